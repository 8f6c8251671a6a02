// Calls of the Verwaltung page to the admin API, through auth.js (session cookie, X-CSRF-Token on writes, a 401
// sends the browser to /anmelden). Failures become an AdminError with the German message to show.
import { authFetch, csrfToken, errorMessage, loginUrl } from "./auth.js";

const UNREACHABLE = "Der Server ist nicht erreichbar. Bitte die Verbindung prüfen und erneut versuchen.";

export class AdminError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

/** JSON request; resolves with the answer's JSON body. */
export async function request(method, path, json) {
  let response;
  try {
    response = await authFetch(path, { method, json });
  } catch {
    throw new AdminError(UNREACHABLE, 0);
  }
  if (!response.ok) throw new AdminError(await errorMessage(response), response.status);
  return response.json();
}

/** Upload form data with progress (fetch reports none for uploads): onProgress(fraction 0…1). */
export async function upload(formData, onProgress) {
  const token = await csrfToken();
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/admin/documents");
    xhr.setRequestHeader("X-CSRF-Token", token);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", async () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(JSON.parse(xhr.responseText));
        return;
      }
      if (xhr.status === 401) location.assign(loginUrl());
      const answer = new Response(xhr.responseText, { status: xhr.status });
      reject(new AdminError(await errorMessage(answer), xhr.status));
    });
    xhr.addEventListener("error", () => reject(new AdminError(UNREACHABLE, 0)));
    xhr.send(formData);
  });
}
