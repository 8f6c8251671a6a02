// Entry point of the chat page. `/?embed=1` shows the compact layout (e.g. for an iframe on a trusted page).
import { mountChat } from "./app.js";
import { embeddedVocabulary } from "./vocabulary.js";

const root = document.getElementById("chat");
const embed = new URLSearchParams(window.location.search).get("embed") === "1";
if (embed) document.body.classList.add("sr-embedded");
mountChat(root, {
  compact: embed,
  storageKey: embed ? "stadtretter-chat:embed:v1" : "stadtretter-chat:v1",
  vocabulary: embeddedVocabulary(),
});
