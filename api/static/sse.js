// Minimal Server-Sent-Events reader for fetch() responses (EventSource cannot POST a JSON body).
// Follows the SSE line format: "event:" / "data:" fields, blank line dispatches, ":" lines are comments.

/**
 * Read an SSE stream and call onEvent(name, data) for every event; data is parsed as JSON when possible.
 * Resolves when the stream ends.
 */
export async function readEventStream(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder("utf-8");
  let buffer = "";
  let eventName = "";
  let dataLines = [];

  const dispatch = () => {
    if (dataLines.length) {
      const raw = dataLines.join("\n");
      let data = raw;
      try {
        data = JSON.parse(raw);
      } catch {
        /* plain text payload */
      }
      onEvent(eventName || "message", data);
    }
    eventName = "";
    dataLines = [];
  };

  const handleLine = (line) => {
    if (line.endsWith("\r")) line = line.slice(0, -1);
    if (line === "") return dispatch();
    if (line.startsWith(":")) return; // comment / keep-alive ping
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") eventName = value;
    else if (field === "data") dataLines.push(value);
    // "id" and "retry" are irrelevant for a one-shot POST stream.
  };

  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let newline;
    while ((newline = buffer.indexOf("\n")) !== -1) {
      handleLine(buffer.slice(0, newline));
      buffer = buffer.slice(newline + 1);
    }
  }
  buffer += decoder.decode();
  if (buffer) handleLine(buffer);
  dispatch();
}
