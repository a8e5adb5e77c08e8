// The chat page: speaks the chat protocol over a WebSocket, one frame per
// message (PROTOCOL.md). Logs in, shows the room and who is in it, sends
// what is typed, answers the server's pings, and reconnects with backoff,
// logging in again under the same name. Everything users say is inserted
// with textContent, never as HTML.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const ui = {
    status: $("status"), error: $("error"), login: $("login"), name: $("name"),
    room: $("room"), messages: $("messages"), users: $("users"),
    userCount: $("user-count"), who: $("who"), say: $("say"), message: $("message"),
  };

  // Keepalive as the protocol's defaults: ping after 30 s of silence, give
  // the connection up 15 s later if nothing at all came.
  const IDLE_MS = 30000;
  const TIMEOUT_MS = 15000;
  const BACKOFF_FIRST_MS = 500;
  const BACKOFF_MAX_MS = 15000;

  let socket = null;
  let wanted = null;      // the name to log in with, once connected
  let me = null;          // the name logged in with, on this connection
  let relogin = false;    // logging in again after a reconnect
  let backoff = BACKOFF_FIRST_MS;
  let retryTimer = null;
  let idleTimer = null;
  let listing = null;     // names of a who: answer being received
  let showListing = false;
  const users = new Set();

  function setStatus(state, text) {
    ui.status.dataset.state = state;
    ui.status.textContent = text;
  }

  function showError(text) {
    ui.error.textContent = text;
    ui.error.hidden = false;
  }

  function clearError() {
    ui.error.hidden = true;
    ui.error.textContent = "";
  }

  function line(cls) {
    const li = document.createElement("li");
    if (cls) li.className = cls;
    const time = document.createElement("span");
    time.className = "time";
    time.textContent = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    li.append(time);
    return li;
  }

  function append(li) {
    const atBottom = ui.messages.scrollHeight - ui.messages.scrollTop - ui.messages.clientHeight < 40;
    ui.messages.append(li);
    if (atBottom) ui.messages.scrollTop = ui.messages.scrollHeight;
  }

  function colour(name) {
    let h = 0;
    for (const c of name) h = (h * 31 + c.codePointAt(0)) % 360;
    return `hsl(${(h * 97) % 360} 55% 38%)`;
  }

  function said(from, text) {
    const li = line("message");
    const who = document.createElement("span");
    who.className = "from";
    who.style.color = colour(from);
    who.textContent = from;
    const what = document.createElement("span");
    what.className = "text";
    what.textContent = text;
    li.append(who, what);
    append(li);
  }

  function note(text, cls = "system") {
    const li = line(cls);
    const what = document.createElement("span");
    what.textContent = text;
    li.append(what);
    append(li);
  }

  function renderUsers() {
    ui.users.replaceChildren();
    for (const name of [...users].sort((a, b) => a.localeCompare(b))) {
      const li = document.createElement("li");
      li.textContent = name;
      li.style.color = colour(name);
      if (name === me) li.className = "me";
      ui.users.append(li);
    }
    ui.userCount.textContent = `(${users.size})`;
  }

  function send(frame) {
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    socket.send(frame);
    return true;
  }

  // ---- keepalive -------------------------------------------------------

  function heard() {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => {
      send("ping:web");
      idleTimer = setTimeout(() => {
        note("the server stopped answering", "failure");
        if (socket) socket.close();
      }, TIMEOUT_MS);
    }, IDLE_MS);
  }

  // ---- the connection ----------------------------------------------------

  function connect() {
    retryTimer = null;
    const url = new URL("ws", location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    setStatus("connecting", "connecting");
    const ws = new WebSocket(url);
    socket = ws;
    ws.onopen = () => {
      setStatus("online", "connected");
      heard();
      if (wanted) send(`iam:${wanted}`);
    };
    ws.onmessage = (event) => {
      heard();
      if (typeof event.data === "string") frame(event.data);
    };
    ws.onclose = (event) => {
      if (socket !== ws) return;
      socket = null;
      clearTimeout(idleTimer);
      if (me) {
        relogin = true;
        note("disconnected", "failure");
      }
      me = null;
      if (event.code !== 1000 && event.code !== 1005) {
        const why = event.reason ? `: ${event.reason}` : "";
        showError(`connection closed (${event.code}${why})`);
      }
      reconnectLater();
    };
  }

  function reconnectLater() {
    const delay = backoff * (0.5 + Math.random() / 2);
    backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
    const at = Date.now() + delay;
    const tick = () => {
      const left = Math.max(0, Math.ceil((at - Date.now()) / 1000));
      setStatus("offline", `reconnecting in ${left} s`);
    };
    tick();
    const countdown = setInterval(tick, 500);
    retryTimer = setTimeout(() => {
      clearInterval(countdown);
      connect();
    }, delay);
  }

  // ---- what the server says ----------------------------------------------

  function frame(text) {
    const colon = text.indexOf(":");
    const tag = colon < 0 ? text : text.slice(0, colon);
    const rest = colon < 0 ? "" : text.slice(colon + 1);
    switch (tag) {
      case "ok": loggedIn(rest); break;
      case "msg": {
        const sep = rest.indexOf(":");
        said(rest.slice(0, sep), rest.slice(sep + 1));
        break;
      }
      case "join": users.add(rest); renderUsers(); note(`${rest} joined`); break;
      case "left": users.delete(rest); renderUsers(); note(`${rest} left`); break;
      case "users": usersFrame(rest); break;
      case "err": failed(rest); break;
      case "ping": send(`pong:${rest}`); break;
      case "pong": break;
      case "bye": note(`the server says goodbye: ${rest}`); break;
      case "notice": note(`notice: ${rest}`); break;
      default: note(text); break;
    }
  }

  function loggedIn(name) {
    me = name;
    wanted = name;
    backoff = BACKOFF_FIRST_MS;
    clearError();
    ui.login.hidden = true;
    ui.room.hidden = false;
    note(relogin ? `back in as ${name}` : `logged in as ${name}`);
    relogin = false;
    // Fill the user list.
    showListing = false;
    send("who:");
    ui.message.focus();
  }

  function usersFrame(names) {
    listing = listing || [];
    if (names !== "") {
      listing.push(...names.split(","));
      return;
    }
    users.clear();
    for (const name of listing) users.add(name);
    listing = null;
    renderUsers();
    if (showListing) note(`in the room: ${[...users].join(", ")}`);
    showListing = false;
  }

  function failed(rest) {
    const sep = rest.indexOf(":");
    const code = sep < 0 ? rest : rest.slice(0, sep);
    const text = sep < 0 ? "" : rest.slice(sep + 1);
    showError(`${code}: ${text}`);
    if (me) {
      note(`error ${code}: ${text}`, "failure");
    } else if (relogin && code === "name-taken") {
      // The server may still hold our old connection: try again shortly.
      setTimeout(() => { if (!me && wanted) send(`iam:${wanted}`); }, backoff);
      backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
    } else {
      wanted = null;
      relogin = false;
      ui.login.hidden = false;
      ui.room.hidden = true;
      ui.name.focus();
    }
  }

  // ---- what the user does --------------------------------------------------

  ui.login.addEventListener("submit", (event) => {
    event.preventDefault();
    wanted = ui.name.value.trim();
    if (!wanted) return;
    clearError();
    relogin = false;
    if (!send(`iam:${wanted}`)) showError("not connected yet: you will be logged in once connected");
  });

  ui.say.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = ui.message.value;
    if (!text) return;
    if (!me || !send(`msg:${text}`)) {
      // Kept in the input line, never dropped without a word.
      showError("not connected: your message is kept, send it again once reconnected");
      return;
    }
    ui.message.value = "";
  });

  ui.who.addEventListener("click", () => {
    showListing = true;
    send("who:");
  });

  connect();
})();
