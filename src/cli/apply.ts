import type { AdminApi } from './admin_api.ts';

export async function applyFile(_api: AdminApi, _text: string, _dir: string, _options: { dryRun: boolean }): Promise<void> {
  throw new Error('not yet');
}
