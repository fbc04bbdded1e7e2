// Clients looping long overviews (issue 21's flood), usable from a test and from a process of its own
// (flood-process.ts), so that the flood's own client work need not share the measuring clients' event loop.
export interface FloodAnswer {
  /** `200 OK`, `503 OVERLOADED`…, or `network error <code>` (ECONNREFUSED: the port is closed; anything else: a reset). */
  outcome: string;
  retryAfter: string | null;
}

/** `clients` clients each posting `overview` again as soon as answered, until `until` says stop. */
export async function flood(url: string, overview: string, clients: number, until: (answer: FloodAnswer) => boolean): Promise<FloodAnswer[]> {
  const answers: FloodAnswer[] = [];
  await Promise.all(Array.from({ length: clients }, async () => {
    for (;;) {
      let answer: FloodAnswer;
      try {
        const body = new FormData();
        body.append('overview', overview);
        const res = await fetch(`${url}/v1/predict`, { method: 'POST', body });
        const json = (await res.json()) as { error?: { code: string } };
        answer = { outcome: `${res.status} ${json.error?.code ?? 'OK'}`, retryAfter: res.headers.get('retry-after') };
      } catch (error) {
        // ECONNREFUSED: the port is closed (after a stop); a reset or a cut answer is anything else.
        answer = { outcome: `network error ${((error as Error).cause as { code?: string } | undefined)?.code ?? (error as Error).message}`, retryAfter: null };
      }
      answers.push(answer);
      if (until(answer)) return;
      // A client told to retry later does so after 250 ms (not its Retry-After: the flood must go on),
      // as the crafted-poster attackers do: a flood of instant refusals would measure request volume.
      if (answer.outcome !== '200 OK') await new Promise((r) => setTimeout(r, 250));
    }
  }));
  return answers;
}
