// Calls of the Verwaltung page to the admin API. The session cookie authenticates; every write carries the
// session's CSRF token (from <meta name="csrf-token">). Failures become an AdminError with the German message.

const CSRF = document.querySelector('meta[name="csrf-token"]')?.content || "";
const UNREACHABLE = "Der Server ist nicht erreichbar. Bitte die Verbindung prüfen und erneut versuchen.";

export class AdminError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

/** The German message of an error answer: the server's `detail`, or one for the status. */
function messageFor(status, data) {
  if (typeof data?.detail === "string") return data.detail;
  if (Array.isArray(data?.detail)) {
    return data.detail.map((item) => `Feld „${(item.loc || []).slice(-1)[0]}“: ${item.msg}`).join("; ");
  }
  if (status === 401) return "Die Anmeldung ist abgelaufen. Bitte die Seite neu laden und erneut anmelden.";
  if (status === 403) return "Dafür fehlt die Berechtigung.";
  return `Der Server meldet einen Fehler (${status}). Bitte später erneut versuchen.`;
}

export async function request(method, path, body) {
  const headers = { Accept: "application/json", "X-CSRF-Token": CSRF };
  const init = { method, headers, credentials: "same-origin" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new AdminError(UNREACHABLE, 0);
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new AdminError(messageFor(response.status, data), response.status);
  return data;
}

/** Upload form data with progress (fetch reports none for uploads): onProgress(fraction 0…1). */
export function upload(formData, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/admin/documents");
    xhr.setRequestHeader("X-CSRF-Token", CSRF);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve(xhr.response);
      else reject(new AdminError(messageFor(xhr.status, xhr.response), xhr.status));
    });
    xhr.addEventListener("error", () => reject(new AdminError(UNREACHABLE, 0)));
    xhr.send(formData);
  });
}
