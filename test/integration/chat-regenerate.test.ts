/**
 * Regenerate and Retry (`user_message` with `metadata.regenerate_of`): the model's context leaves out
 * the replaced reply and the question it answered; the stored history keeps everything. What the
 * model read is what the fake provider received.
 */
import { FakeOpenAi, startFakeOpenAi, openAiProviderEnv, FAKE_GPT } from '../support/fake-llm';
import { startTestApp, TestApp } from '../support/app';
import { userToken } from '../support/tokens';
import { greetedClient, TestClient } from '../support/ws-client';

const SYSTEM_PROMPT = 'You are the regenerate test assistant.';

type Turn = { role: string; content: string };

describe('chat: Regenerate and Retry send the model the conversation the user sees', () => {
  let t: TestApp;
  let fake: FakeOpenAi;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    fake = await startFakeOpenAi();
    t = await startTestApp({
      LLM_SYSTEM_PROMPT: SYSTEM_PROMPT,
      ...openAiProviderEnv(fake, FAKE_GPT),
    });
  });
  beforeEach(() => fake.reset());
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
  });
  afterAll(async () => {
    await t?.close();
    await fake?.close();
  });

  const connect = (userId: string) => greetedClient(t.wsUrl, userId, clients);

  /** Sends a question and waits for its reply; the reply's text is `answer`. */
  async function ask(
    client: TestClient,
    content: string,
    answer: string,
    metadata?: Record<string, string>,
  ): Promise<{ id: string; sessionId: string }> {
    fake.scriptOnce({ chunks: [answer] });
    const from = client.frames.length;
    client.send({ type: 'user_message', content, ...(metadata ? { metadata } : {}) });
    const loading = await client.waitFor((frame) => frame.type === 'loading', 10_000, from);
    const { done, text } = await client.waitForReply(loading.metadata!.message_id);
    expect(text).toBe(answer);
    return { id: done.metadata!.message_id, sessionId: done.session_id! };
  }

  /** The turns (system prompt left out) of the newest request the model received. */
  function lastContext(): Turn[] {
    const body = fake.requestsTo('/chat/completions').at(-1)!.body as { messages: Turn[] };
    return body.messages.filter((turn) => turn.role !== 'system');
  }

  async function history(sessionId: string, userId: string): Promise<any[]> {
    const response = await fetch(`${t.baseUrl}/sessions/${sessionId}`, {
      headers: { Authorization: `Bearer ${userToken(userId)}` },
    });
    return ((await response.json()) as { messages: any[] }).messages;
  }

  it('Regenerate: without the replaced reply and its question, also for the questions after it; history keeps both', async () => {
    const user = await connect('regen-user');
    await ask(user, 'Hello', 'Hi there');
    const { id: replaced, sessionId } = await ask(user, 'Do you ship to Norway?', 'No.');
    await ask(user, 'Do you ship to Norway?', 'Yes, in 5 days.', { regenerate_of: replaced });
    expect(lastContext()).toEqual([
      { role: 'user', content: 'Hello' },
      { role: 'assistant', content: 'Hi there' },
      { role: 'user', content: 'Do you ship to Norway?' },
    ]);

    await ask(user, 'How much is it?', '10 EUR');
    expect(lastContext()).toEqual([
      { role: 'user', content: 'Hello' },
      { role: 'assistant', content: 'Hi there' },
      { role: 'user', content: 'Do you ship to Norway?' },
      { role: 'assistant', content: 'Yes, in 5 days.' },
      { role: 'user', content: 'How much is it?' },
    ]);

    // Both replies stay in the stored history; the re-sent question names the one it replaced.
    const stored = await history(sessionId, 'regen-user');
    expect(stored.map((message) => [message.sender, message.content])).toEqual([
      ['user', 'Hello'],
      ['ai', 'Hi there'],
      ['user', 'Do you ship to Norway?'],
      ['ai', 'No.'],
      ['user', 'Do you ship to Norway?'],
      ['ai', 'Yes, in 5 days.'],
      ['user', 'How much is it?'],
      ['ai', '10 EUR'],
    ]);
    expect(stored[4].metadata).toEqual({ regenerate_of: replaced });
  });

  it('Retry of a reply that failed before its first word (not stored): the question reaches the model once', async () => {
    const user = await connect('retry-user');
    await ask(user, 'Hello', 'Hi there');
    fake.scriptOnce({ status: 400 });
    const from = user.frames.length;
    user.send({ type: 'user_message', content: 'What is the delivery time?' });
    const loading = await user.waitFor((frame) => frame.type === 'loading', 10_000, from);
    const failed = loading.metadata!.message_id;
    const { done } = await user.waitForReply(failed);
    expect(done.metadata!.error).toBeDefined();

    await ask(user, 'What is the delivery time?', 'Two days.', { regenerate_of: failed });
    expect(lastContext()).toEqual([
      { role: 'user', content: 'Hello' },
      { role: 'assistant', content: 'Hi there' },
      { role: 'user', content: 'What is the delivery time?' },
    ]);
  });

  it('a name that is no AI reply of this session changes nothing; a malformed one is refused at the edge', async () => {
    const other = await connect('regen-other');
    const { id: foreignReply } = await ask(other, 'Hello', 'Hi other');

    const user = await connect('regen-plain');
    const { sessionId } = await ask(user, 'First question', 'First answer');
    const [question] = await history(sessionId, 'regen-plain');
    // Another user's reply, a user message of this session, an id nobody uses.
    await ask(user, 'Second question', 'Second answer', { regenerate_of: foreignReply });
    await ask(user, 'Third question', 'Third answer', { regenerate_of: question.id });
    await ask(user, 'Fourth question', 'Fourth answer', { regenerate_of: 'no-such-message' });
    expect(lastContext()).toEqual([
      { role: 'user', content: 'First question' },
      { role: 'assistant', content: 'First answer' },
      { role: 'user', content: 'Second question' },
      { role: 'assistant', content: 'Second answer' },
      { role: 'user', content: 'Third question' },
      { role: 'assistant', content: 'Third answer' },
      { role: 'user', content: 'Fourth question' },
    ]);

    const requests = fake.requestsTo('/chat/completions').length;
    const from = user.frames.length;
    user.send({ type: 'user_message', content: 'Again', metadata: { regenerate_of: '{"$ne":null}' } });
    const refused = await user.waitFor((frame) => frame.type === 'error', 10_000, from);
    expect(refused.error).toMatchObject({
      code: 'INVALID_FORMAT',
      message: 'metadata.regenerate_of must be a message id',
    });
    // Nothing stored, nothing asked: the next question is answered after exactly the four before.
    await ask(user, 'Fifth question', 'Fifth answer');
    expect(fake.requestsTo('/chat/completions')).toHaveLength(requests + 1);
    expect((await history(sessionId, 'regen-plain')).map((message) => message.content)).not.toContain(
      'Again',
    );
  });
});
