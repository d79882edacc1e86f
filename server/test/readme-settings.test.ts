/**
 * Every setting the gateway reads is in the README's configuration table, and
 * the table names none that does not exist: operators configure from it.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SETTINGS, envName, type SettingName } from '../src/config.js';

const readme = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');

describe('the README configuration table', () => {
  it('lists exactly the settings of `topicgate help`', () => {
    const rows = readme.split('\n').filter((line) => line.startsWith('| `TOPICGATE_'));
    const documented = new Set(rows.flatMap((row) => [...row.split('|')[1]!.matchAll(/`(TOPICGATE_[A-Z_]+)`/g)].map((m) => m[1]!)));
    const settings = new Set((Object.keys(SETTINGS) as SettingName[]).map(envName));
    expect([...settings].filter((name) => !documented.has(name)), 'settings missing from the README').toEqual([]);
    expect([...documented].filter((name) => !settings.has(name)), 'README rows for settings that do not exist').toEqual([]);
  });
});
