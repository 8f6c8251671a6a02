// Feedback on an answer: thumbs up/down, an optional comment, sent to /v1/feedback once. The rating and whether it
// was sent are part of the answer message, so they survive a reload.

import { HttpError } from "./api.js";
import { MESSAGES } from "./messages.js";

/** The request body of /v1/feedback: what the participant saw, the rating and the comment. */
export function feedbackBody(msg, comment, conversationId) {
  return {
    question: msg.question,
    answer: msg.content,
    citations: (msg.citations || []).map(({ n, source_id, title, type, locator, chunk_id, url, snippet }) => ({
      n, source_id, title, type, locator, chunk_id, url, snippet,
    })),
    rating: msg.feedback.rating,
    comment: comment.trim() || null,
    conversation_id: conversationId,
  };
}

export class Feedback {
  constructor(conversation, view, api) {
    this.conversation = conversation;
    this.view = view;
    this.api = api;
  }

  /** A thumb was pressed: open the comment form. */
  rate(msg, rating) {
    if (msg.feedback?.sent) return;
    msg.feedback = { rating, sent: false };
    this.conversation.save();
    this.view.updateAnswer(msg);
    this.view.focusIn(msg, ".sr-feedback textarea");
  }

  cancel(msg) {
    msg.feedback = null;
    this.conversation.save();
    this.view.updateAnswer(msg);
    this.view.focusIn(msg, `[data-action="rate"]`);
  }

  async send(id, comment) {
    const msg = this.conversation.find(id);
    if (!msg || !msg.feedback) return;
    try {
      await this.api.sendFeedback(feedbackBody(msg, comment, this.conversation.conversationId));
      msg.feedback = { rating: msg.feedback.rating, sent: true };
      this.view.announce("Danke für Ihr Feedback!");
    } catch (error) {
      msg.feedback.comment = comment;
      msg.feedback.error = error instanceof HttpError && error.status ? error.message : MESSAGES.feedbackFailed;
    }
    this.conversation.save();
    this.view.updateAnswer(msg);
    const node = this.view.nodeFor(msg);
    const next = msg.feedback.sent ? node?.querySelector(".sr-feedback-done") : node?.querySelector(".sr-feedback textarea");
    if (next) {
      if (!next.matches("textarea")) next.setAttribute("tabindex", "-1");
      next.focus();
    }
  }
}
