// Source view: phase colours from the server's vocabulary; bring the cited passage (?chunk= or ?t=) into view and
// move focus there for keyboard users.
import { Vocabulary, embeddedVocabulary } from "./vocabulary.js";

new Vocabulary(embeddedVocabulary()).applyColours(document.querySelector(".sr-app"));
const target = document.querySelector("[data-target]");
if (target) {
  target.scrollIntoView({ block: "center" });
  target.focus({ preventScroll: true });
}
