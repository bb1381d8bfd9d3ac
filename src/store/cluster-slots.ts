// Redis Cluster key slots: CRC16 (XMODEM) of the key, or of its hash tag, modulo 16384.
// rhopush uses them to place its own keys (canary, lease) on a chosen master.

export const CLUSTER_SLOTS = 16384;

const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

/** CRC16-CCITT (XMODEM), the checksum Redis Cluster uses. */
export function crc16(data: Uint8Array): number {
  let crc = 0;
  for (const byte of data) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ byte) & 0xff]!;
  return crc;
}

/** The part of a key that is hashed: the first non-empty `{...}`, else the whole key. */
export function hashTagOf(key: string): string {
  const open = key.indexOf('{');
  if (open < 0) return key;
  const close = key.indexOf('}', open + 1);
  if (close < 0 || close === open + 1) return key;
  return key.slice(open + 1, close);
}

export function keySlot(key: string): number {
  const tag = hashTagOf(key);
  // ASCII (the common case) is hashed from char codes, without a buffer.
  let crc = 0;
  for (let i = 0; i < tag.length; i++) {
    const c = tag.charCodeAt(i);
    if (c > 0x7f) return crc16(Buffer.from(tag, 'utf8')) % CLUSTER_SLOTS;
    crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ c) & 0xff]!;
  }
  return crc % CLUSTER_SLOTS;
}

let tagsBySlot: string[] | undefined;

/**
 * A short hash tag whose slot is `slot`: `{<tag>}` in a key puts the key on that slot. Built once
 * (about 160k CRCs, a few milliseconds) and then a table lookup.
 */
export function tagForSlot(slot: number): string {
  if (!Number.isInteger(slot) || slot < 0 || slot >= CLUSTER_SLOTS) throw new RangeError(`no such cluster slot: ${slot}`);
  if (!tagsBySlot) {
    const table: string[] = new Array<string>(CLUSTER_SLOTS);
    let missing = CLUSTER_SLOTS;
    for (let i = 0; missing > 0; i++) {
      const tag = `rp${i.toString(36)}`;
      const s = keySlot(tag);
      if (table[s] === undefined) {
        table[s] = tag;
        missing -= 1;
      }
    }
    tagsBySlot = table;
  }
  return tagsBySlot[slot]!;
}

/** Slot ranges as Redis reports them: inclusive [start, end] pairs. */
export type SlotRange = readonly [number, number];

export function ownsSlot(ranges: readonly SlotRange[], slot: number): boolean {
  return ranges.some(([start, end]) => slot >= start && slot <= end);
}

export function lowestSlot(ranges: readonly SlotRange[]): number | undefined {
  let lowest: number | undefined;
  for (const [start] of ranges) if (lowest === undefined || start < lowest) lowest = start;
  return lowest;
}
