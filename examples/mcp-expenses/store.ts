import { randomBytes } from 'node:crypto';

export interface Expense {
  id: string;
  /** The user (sub) whose expense it is. */
  owner: string;
  amount: number;
  currency: string;
  description: string;
  status: 'submitted' | 'approved';
  approved_by?: string;
}

/** The expenses application's own data, in memory: the example is about who may call it, not storage. */
export class ExpenseStore {
  readonly #items = new Map<string, Expense>();

  newId(): string {
    return `exp_${randomBytes(6).toString('hex')}`;
  }

  add(e: Omit<Expense, 'id' | 'status'> & { id?: string }): Expense {
    const expense: Expense = { ...e, id: e.id ?? this.newId(), status: 'submitted' };
    this.#items.set(expense.id, expense);
    return expense;
  }

  get(id: string): Expense | undefined {
    return this.#items.get(id);
  }

  list(): Expense[] {
    return [...this.#items.values()];
  }

  approve(id: string, by: string): Expense {
    const e = this.#items.get(id);
    if (!e) throw new Error(`no expense ${id}`);
    e.status = 'approved';
    e.approved_by = by;
    return e;
  }
}
