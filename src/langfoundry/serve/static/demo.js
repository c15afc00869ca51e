// The chat page's only script: post the question to /v1/chat/completions, show the answer or the server's error.
"use strict";

const USER = "demo-" + Math.random().toString(36).slice(2, 10); // one browser tab: one user for A/B routing

function turn(kind, text, meta) {
  const item = document.createElement("div");
  item.className = "turn " + kind;
  const body = document.createElement("div");
  body.className = "text";
  body.textContent = text; // text, never HTML: a model's answer cannot inject markup
  item.appendChild(body);
  if (meta) {
    const line = document.createElement("div");
    line.className = "meta";
    line.textContent = meta;
    item.appendChild(line);
  }
  document.getElementById("chat").appendChild(item);
  return item;
}

async function showModels() {
  try {
    const response = await fetch("/v1/models");
    const listing = await response.json();
    document.getElementById("model").textContent =
      "model: " + listing.data.map((model) => model.id + " (" + model.role + ")").join(", ");
  } catch (error) {
    document.getElementById("model").textContent = "model: unknown (" + error + ")";
  }
}

async function ask(event) {
  event.preventDefault();
  const prompt = document.getElementById("prompt").value.trim();
  if (!prompt) return;
  const button = document.getElementById("send");
  button.disabled = true;
  turn("user", prompt);
  const pending = turn("assistant pending", "…");
  const started = performance.now();
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: {"Content-Type": "application/json", "X-User-Id": USER},
      body: JSON.stringify({
        model: "auto", user: USER,
        max_tokens: Number(document.getElementById("max-tokens").value) || 32,
        temperature: Number(document.getElementById("temperature").value) || 0,
        messages: [{role: "user", content: prompt}],
      }),
    });
    const reply = await response.json();
    pending.remove();
    if (!response.ok) {
      turn("failed", (reply.error && reply.error.message) || ("HTTP " + response.status));
    } else {
      const answer = reply.choices[0].message.content;
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      const shown = turn("assistant answer", answer === "" ? "(an empty answer)" : answer,
        reply.model + " · " + reply.usage.completion_tokens + " tokens · " + seconds + " s · " + reply.id);
      shown.dataset.answer = answer;
    }
  } catch (error) {
    pending.remove();
    turn("failed", "no answer: " + error);
  } finally {
    button.disabled = false;
  }
}

document.getElementById("ask").addEventListener("submit", ask);
showModels();
