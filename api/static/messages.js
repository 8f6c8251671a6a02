// What the chat tells the participant (German), and the question limit its messages mention.

export const MAX_QUESTION = 2000;

export const MESSAGES = {
  empty: "Bitte geben Sie zuerst eine Frage ein.",
  tooLong: `Die Frage ist zu lang (höchstens ${MAX_QUESTION} Zeichen).`,
  busy: "Bitte warten Sie, bis die aktuelle Antwort fertig ist.",
  network:
    "Keine Verbindung zum Wissens-Chat. Bitte prüfen Sie Ihre Internetverbindung und versuchen Sie es erneut.",
  networkWidget:
    "Keine Verbindung zum Wissens-Chat. Entweder ist der Server gerade nicht erreichbar oder diese Website ist für den Chat nicht freigeschaltet.",
  unavailable: "Der Wissens-Chat ist gerade nicht verfügbar. Bitte versuchen Sie es in einigen Minuten erneut.",
  server: "Beim Beantworten ist ein Fehler aufgetreten. Bitte versuchen Sie es erneut.",
  invalid: "Die Frage konnte nicht verarbeitet werden. Bitte formulieren Sie sie kürzer oder anders.",
  rateLimited: "Zu viele Anfragen – bitte warten Sie einen Moment und versuchen Sie es dann erneut.",
  interrupted: "Die Antwort wurde unterbrochen. Bitte versuchen Sie es erneut.",
  reloaded: "Die Antwort wurde durch das Neuladen der Seite unterbrochen. Bitte versuchen Sie es erneut.",
  feedbackFailed: "Das Feedback konnte nicht gesendet werden. Bitte versuchen Sie es später erneut.",
  copyFailed: "Kopieren war nicht möglich. Bitte markieren Sie den Text und kopieren Sie ihn von Hand.",
};
