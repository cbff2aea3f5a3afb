import { describe, expect, it } from 'vitest';
import { canonicalBytes, canonicalize } from '../../src/ledger/canonical.ts';

/** The IEEE 754 double with this big-endian bit pattern. */
function double(bits: string): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setBigUint64(0, BigInt(`0x${bits}`));
  return view.getFloat64(0);
}

describe('RFC 8785 Appendix B: number serialization', () => {
  // IEEE 754 bit pattern → canonical text.
  const vectors: [string, string][] = [
    ['0000000000000000', '0'],
    ['8000000000000000', '0'], // minus zero
    ['0000000000000001', '5e-324'], // smallest positive subnormal
    ['8000000000000001', '-5e-324'],
    ['7fefffffffffffff', '1.7976931348623157e+308'], // largest finite
    ['ffefffffffffffff', '-1.7976931348623157e+308'],
    ['4340000000000000', '9007199254740992'], // 2^53
    ['c340000000000000', '-9007199254740992'],
    ['4430000000000000', '295147905179352830000'], // ~2^68
    ['44b52d02c7e14af5', '9.999999999999997e+22'],
    ['44b52d02c7e14af6', '1e+23'],
    ['44b52d02c7e14af7', '1.0000000000000001e+23'],
    ['444b1ae4d6e2ef4e', '999999999999999700000'],
    ['444b1ae4d6e2ef4f', '999999999999999900000'],
    ['444b1ae4d6e2ef50', '1e+21'],
    ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
    ['3eb0c6f7a0b5ed8d', '0.000001'],
    ['41b3de4355555553', '333333333.3333332'],
    ['41b3de4355555554', '333333333.33333325'],
    ['41b3de4355555555', '333333333.3333333'],
    ['41b3de4355555556', '333333333.3333334'],
    ['41b3de4355555557', '333333333.33333343'],
    ['becbf647612f3696', '-0.0000033333333333333333'],
    ['43143ff3c1cb0959', '1424953923781206.2'], // round to even
  ];

  it.each(vectors)('0x%s → %s', (bits, expected) => {
    expect(canonicalize(double(bits))).toBe(expected);
    expect(canonicalize({ n: double(bits) })).toBe(`{"n":${expected}}`);
    expect(canonicalize([double(bits)])).toBe(`[${expected}]`);
  });

  it.each([
    ['7fffffffffffffff', 'NaN'],
    ['7ff0000000000000', 'Infinity'],
    ['fff0000000000000', '-Infinity'],
  ])('0x%s (%s) is refused', (bits, name) => {
    expect(() => canonicalize(double(bits))).toThrow(TypeError);
    expect(() => canonicalize(double(bits))).toThrow(`cannot canonicalize ${name} at $: JSON numbers must be finite`);
    expect(() => canonicalize({ a: [1, double(bits)] })).toThrow(`at $.a[1]`);
  });

  it('writes minus zero as 0 wherever it appears', () => {
    expect(canonicalize(-0)).toBe('0');
    expect(canonicalize({ a: -0, b: [-0, { c: -0 }] })).toBe('{"a":0,"b":[0,{"c":0}]}');
  });

  it('switches to exponent form exactly outside [1e-7, 1e21)', () => {
    expect(canonicalize(1e-7)).toBe('1e-7');
    expect(canonicalize(1.5e-7)).toBe('1.5e-7');
    expect(canonicalize(0.0000015)).toBe('0.0000015');
    expect(canonicalize(1e20)).toBe('100000000000000000000');
    expect(canonicalize(1e21)).toBe('1e+21');
    expect(canonicalize(123e-20)).toBe('1.23e-18');
    expect(canonicalize(-42)).toBe('-42');
    expect(canonicalize(4.5)).toBe('4.5');
  });
});

describe('RFC 8785 §3.2.2 / §3.2.4: the worked example', () => {
  // The RFC's input, written as JS: {"numbers": [333333333.33333329, 1E30, 4.50, 2e-3,
  // 0.000000000000000000000000001], "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  // "literals": [null, true, false]}
  const input = {
    numbers: [333333333.33333329, 1e30, 4.5, 2e-3, 0.000000000000000000000000001],
    string: '\u20ac$\u000F\u000aA\'\u0042\u0022\u005c\\"/',
    literals: [null, true, false],
  };
  const expected =
    '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],' +
    '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}';

  it('produces the canonical text', () => {
    expect(canonicalize(input)).toBe(expected);
  });

  it('encodes it as UTF-8', () => {
    const bytes = canonicalBytes(input);
    expect(Buffer.isBuffer(bytes)).toBe(true);
    // Every character is ASCII except the euro sign, which takes three bytes.
    expect(bytes.length).toBe(expected.length + 2);
    const euro = bytes.indexOf(Buffer.from([0xe2, 0x82, 0xac]));
    expect(euro).toBe(expected.indexOf('€'));
    expect(bytes.subarray(0, 12).toString('hex')).toBe('7b226c69746572616c73223a'); // {"literals":
    expect(bytes.subarray(-5).toString('hex')).toBe('5c222f227d'); // \"/"}
  });
});

describe('RFC 8785 §3.2.3: sorting of member names', () => {
  it('sorts by UTF-16 code units, not code points or locale', () => {
    const input = Object.fromEntries([
      ['\u20ac', 'Euro Sign'],
      ['\r', 'Carriage Return'],
      ['\ufb33', 'Hebrew Letter Dalet With Dagesh'],
      ['1', 'One'],
      ['\ud83d\ude00', 'Emoji: Grinning Face'],
      ['\u0080', 'Control'],
      ['\u00f6', 'Latin Small Letter O With Diaeresis'],
    ]);
    const expected =
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
      '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}';
    expect(canonicalize(input)).toBe(expected);
    // The emoji (U+1F600, surrogates D83D DE00) sorts before U+FB33 although its code point is larger.
    expect(canonicalize({ '\ufb33': 1, '\ud83d\ude00': 2 })).toBe('{"\ud83d\ude00":2,"\ufb33":1}');
  });

  it('ignores insertion order, including the integer-first order of own keys', () => {
    expect(canonicalize({ b: 1, a: 2, 10: 3, 9: 4, A: 5, _: 6 })).toBe('{"10":3,"9":4,"A":5,"_":6,"a":2,"b":1}');
    expect(canonicalize({ z: { y: 1, x: 2 }, a: [{ d: 1, c: 2 }] })).toBe('{"a":[{"c":2,"d":1}],"z":{"x":2,"y":1}}');
  });

  it('sorts in the raw (unescaped) form, so "\\n" (0x0A) comes before "!" (0x21)', () => {
    expect(canonicalize({ '!': 1, '\n': 2, '\u0000': 3 })).toBe('{"\\u0000":3,"\\n":2,"!":1}');
  });
});

describe('string serialization (§3.2.2.2)', () => {
  it('escapes only the quote, the backslash and C0 controls, with the short forms where they exist', () => {
    const controls = Array.from({ length: 0x20 }, (_, i) => String.fromCharCode(i)).join('');
    const escaped =
      '\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f' +
      '\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f';
    expect(canonicalize(controls)).toBe(`"${escaped}"`);
    expect(canonicalize('"\\')).toBe('"\\"\\\\"');
  });

  it('leaves "/", DEL, non-ASCII, U+2028/2029 and astral characters as they are', () => {
    const raw = '/\u007f\u00e9\u2028\u2029\ud83d\ude00\ufeff';
    expect(canonicalize(raw)).toBe(`"${raw}"`);
    expect(canonicalBytes(raw).toString('hex')).toBe('222f7fc3a9e280a8e280a9f09f9880efbbbf22');
  });
});

describe('structure', () => {
  it('emits no whitespace and keeps array order', () => {
    expect(canonicalize({ a: [3, 1, 2], b: { c: [] }, d: {}, e: '' })).toBe('{"a":[3,1,2],"b":{"c":[]},"d":{},"e":""}');
    expect(canonicalize([[], [[]], {}])).toBe('[[],[[]],{}]');
    expect(canonicalize(null)).toBe('null');
    expect(canonicalize(true)).toBe('true');
    expect(canonicalize(false)).toBe('false');
    expect(canonicalize('')).toBe('""');
  });

  it('omits object members whose value is undefined, as JSON.stringify does', () => {
    expect(canonicalize({ a: 1, b: undefined, c: { d: undefined } })).toBe('{"a":1,"c":{}}');
    expect(canonicalize({ only: undefined })).toBe('{}');
  });

  it('accepts null-prototype objects and shared (acyclic) references', () => {
    const bare = Object.create(null) as Record<string, unknown>;
    bare.y = 1;
    bare.x = 2;
    expect(canonicalize(bare)).toBe('{"x":2,"y":1}');
    const shared = { v: 1 };
    expect(canonicalize({ a: shared, b: [shared, shared] })).toBe('{"a":{"v":1},"b":[{"v":1},{"v":1}]}');
  });

  it('ignores non-enumerable properties, as JSON.stringify does', () => {
    const o = { a: 1 };
    Object.defineProperty(o, 'hidden', { value: 2, enumerable: false });
    expect(canonicalize(o)).toBe('{"a":1}');
  });
});

describe('values JSON cannot represent are refused', () => {
  class Point {
    x = 1;
    y = 2;
  }
  const cases: [string, () => unknown, string][] = [
    ['undefined at the top level', () => undefined, 'cannot canonicalize undefined: JSON has no undefined (at $)'],
    ['undefined in an array', () => [1, undefined], 'cannot canonicalize undefined at $[1]'],
    ['a function', () => ({ f: () => 1 }), 'cannot canonicalize a function at $.f'],
    ['a symbol value', () => ({ s: Symbol('x') }), 'cannot canonicalize a symbol at $.s'],
    ['a symbol key', () => ({ a: 1, [Symbol('k')]: 2 }), 'cannot canonicalize an object with symbol-keyed properties at $'],
    ['a bigint', () => ({ n: [10n] }), 'cannot canonicalize a bigint at $.n[0]'],
    ['a Date', () => ({ at: new Date(0) }), 'cannot canonicalize a Date at $.at'],
    ['a Map', () => ({ m: new Map() }), 'cannot canonicalize a Map at $.m'],
    ['a Set', () => [new Set([1])], 'cannot canonicalize a Set at $[0]'],
    ['a RegExp', () => ({ r: /x/ }), 'cannot canonicalize a RegExp at $.r'],
    ['a Buffer', () => ({ b: Buffer.from('x') }), 'cannot canonicalize a Buffer at $.b'],
    ['a Uint8Array', () => ({ u: new Uint8Array(1) }), 'cannot canonicalize a Uint8Array at $.u'],
    ['a boxed string', () => ({ s: new String('x') }), 'cannot canonicalize a String at $.s'],
    ['a class instance', () => ({ p: new Point() }), 'cannot canonicalize an instance of class Point at $.p'],
    ['an Error', () => ({ e: new Error('x') }), 'cannot canonicalize an Error at $.e'],
    ['a lone high surrogate', () => ({ s: 'a\ud800b' }), 'not well-formed Unicode (it has a lone surrogate) at $.s'],
    ['a lone low surrogate', () => ['\udc00'], 'not well-formed Unicode (it has a lone surrogate) at $[0]'],
    ['reversed surrogates', () => '\ude00\ud83d', 'not well-formed Unicode'],
    ['a lone surrogate in a key', () => ({ ['k\ud800']: 1 }), 'a member name that is not well-formed Unicode'],
    ['a sparse array', () => ({ a: [1, , 3] }), 'cannot canonicalize a sparse array: $.a[1] is a hole'],
    ['NaN deep inside', () => ({ 'a b': { c: [0, NaN] } }), 'cannot canonicalize NaN at $["a b"].c[1]'],
  ];

  it.each(cases)('refuses %s', (_name, make, message) => {
    const value = make();
    expect(() => canonicalize(value)).toThrow(TypeError);
    expect(() => canonicalize(value)).toThrow(message);
    expect(() => canonicalBytes(value)).toThrow(TypeError);
  });

  it('refuses cycles through objects and arrays', () => {
    const o: Record<string, unknown> = { a: 1 };
    o.self = o;
    expect(() => canonicalize(o)).toThrow('cannot canonicalize a cyclic structure: $.self refers back to one of its ancestors');
    const arr: unknown[] = [1];
    arr.push({ back: arr });
    expect(() => canonicalize(arr)).toThrow('cannot canonicalize a cyclic structure: $[1].back refers back');
  });

  it('refuses a toJSON method instead of calling it', () => {
    expect(() => canonicalize({ v: { toJSON: () => 'x' } })).toThrow('cannot canonicalize a function at $.v.toJSON');
  });
});

describe('agreement with ECMAScript JSON.stringify on generated data', () => {
  // A small deterministic generator (xorshift32), so a failure is reproducible.
  function generator(seed: number): () => number {
    let s = seed >>> 0 || 1;
    return () => {
      s ^= s << 13;
      s >>>= 0;
      s ^= s >>> 17;
      s ^= s << 5;
      s >>>= 0;
      return s / 2 ** 32;
    };
  }
  const alphabet = ['a', 'B', 'z', '0', '9', '_', ' ', '"', '\\', '\n', '\u0001', '\u001f', '/', 'é', '\u20ac', '\ud83d\ude00', '\ufb33', '\u2028'];

  function randomString(rand: () => number): string {
    const length = Math.floor(rand() * 6);
    let s = '';
    for (let i = 0; i < length; i++) s += alphabet[Math.floor(rand() * alphabet.length)];
    return s;
  }
  function randomNumber(rand: () => number): number {
    const pick = rand();
    if (pick < 0.3) return Math.floor(rand() * 2000) - 1000;
    if (pick < 0.6) return (rand() - 0.5) * 10 ** Math.floor(rand() * 60 - 30);
    const view = new DataView(new ArrayBuffer(8));
    view.setUint32(0, Math.floor(rand() * 2 ** 32));
    view.setUint32(4, Math.floor(rand() * 2 ** 32));
    const d = view.getFloat64(0);
    return Number.isFinite(d) ? d : 1;
  }
  function randomValue(rand: () => number, depth: number): unknown {
    const pick = rand();
    if (depth > 3 || pick < 0.45) {
      const leaf = rand();
      if (leaf < 0.1) return null;
      if (leaf < 0.2) return rand() < 0.5;
      if (leaf < 0.6) return randomNumber(rand);
      return randomString(rand);
    }
    if (pick < 0.7) return Array.from({ length: Math.floor(rand() * 4) }, () => randomValue(rand, depth + 1));
    const o: Record<string, unknown> = {};
    const n = Math.floor(rand() * 5);
    for (let i = 0; i < n; i++) o[randomString(rand)] = randomValue(rand, depth + 1);
    return o;
  }
  /** Rebuilds objects with keys inserted in code-unit order, so JSON.stringify emits them sorted. */
  function sortedCopy(v: unknown): unknown {
    if (Array.isArray(v)) return v.map(sortedCopy);
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      const keys = Object.keys(v).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      // Integer-like keys are always enumerated first; that is exactly what canonical sorting must undo.
      for (const k of keys) out[k] = sortedCopy((v as Record<string, unknown>)[k]);
      return out;
    }
    return v;
  }
  function shuffledCopy(v: unknown, rand: () => number): unknown {
    if (Array.isArray(v)) return v.map((x) => shuffledCopy(x, rand));
    if (v !== null && typeof v === 'object') {
      const entries = Object.entries(v);
      for (let i = entries.length - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [entries[i], entries[j]] = [entries[j]!, entries[i]!];
      }
      return Object.fromEntries(entries.map(([k, x]) => [k, shuffledCopy(x, rand)]));
    }
    return v;
  }

  it('matches JSON.stringify of a key-sorted copy, is order-independent, and parses back to the same data', () => {
    const rand = generator(0x8785);
    let checked = 0;
    for (let i = 0; i < 2000; i++) {
      const value = randomValue(rand, 0);
      const text = canonicalize(value);
      expect(JSON.parse(text)).toEqual(value);
      expect(canonicalize(shuffledCopy(value, rand))).toBe(text);
      expect(canonicalBytes(value).equals(Buffer.from(text, 'utf8'))).toBe(true);
      expect(canonicalize(JSON.parse(text))).toBe(text); // idempotent
      // Where no object has integer-like keys, insertion order is enumeration order and JSON.stringify
      // of the sorted copy is an independent oracle for the whole output.
      if (!/"\d+":/.test(text)) {
        expect(text).toBe(JSON.stringify(sortedCopy(value)));
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(1500);
  });
});
