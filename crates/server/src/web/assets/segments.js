// The segment builder: turns the definition's JSON (the form's textarea, which stays the
// value posted) into groups of conditions, writes every change back to it, and asks the
// server for the live count. Without this script the textarea and the Count button do it all.
"use strict";

(() => {
  const root = document.getElementById("builder");
  const area = document.getElementById("s-definition");
  if (!root || !area) return;
  const form = area.form;
  const choices = JSON.parse(root.dataset.choices || "{}");
  const count = document.getElementById("count");

  const KINDS = [
    ["attribute", "Attribute"],
    ["performed", "Performed an event"],
    ["not_performed", "Did not perform an event"],
    ["first_performed", "First performed"],
    ["last_performed", "Last performed"],
    ["email", "Email engagement"],
    ["subscribed_to", "Subscribed to topic"],
    ["not_subscribed_to", "Not subscribed to topic"],
    ["member_of", "Member of segment"],
    ["json", "Other (JSON)"],
  ];
  const NO_VALUE = ["exists", "not_exists"];
  const LISTS = ["in", "not_in"];
  const TIMES = [["at_least", "at least"], ["at_most", "at most"], ["exactly", "exactly"]];

  // ---- The model: a group {combine, negate, items} of conditions and groups. ----

  const isObject = (v) => v && typeof v === "object" && !Array.isArray(v);
  const keysIn = (v, allowed) => Object.keys(v).every((k) => allowed.includes(k));
  const text = (v) => (v === undefined || v === null ? "" : typeof v === "string" ? v : JSON.stringify(v));
  const simpleRule = (w) => isObject(w) && typeof w.field === "string" && keysIn(w, ["field", "op", "value"]);

  function group(combine, negate, items) {
    return { kind: "group", combine, negate, items };
  }

  function fromJson(v) {
    if (isObject(v)) {
      for (const combine of ["all", "any"]) {
        if (Array.isArray(v[combine]) && keysIn(v, [combine])) return group(combine, false, v[combine].map(fromJson));
      }
      if ("not" in v && keysIn(v, ["not"])) {
        const inner = fromJson(v.not);
        return inner.kind === "group" && !inner.negate ? { ...inner, negate: true } : group("all", true, [inner]);
      }
      if (typeof v.field === "string" && keysIn(v, ["field", "op", "value"])) {
        const value = Array.isArray(v.value) ? v.value.map(text).join(", ") : text(v.value);
        return { kind: "attribute", field: v.field, op: v.op || "eq", value };
      }
      const name = (k) => typeof v[k] === "string";
      if (name("performed") && keysIn(v, ["performed", "where", "times", "within"]) && (!v.where || simpleRule(v.where))) {
        const [cmp, n] = isObject(v.times) ? Object.entries(v.times)[0] || [] : [];
        const where = v.where || {};
        return { kind: "performed", name: v.performed, cmp: cmp || "at_least", n: n === undefined ? "" : String(n),
          within: v.within || "", whereField: where.field || "", whereOp: where.op || "eq", whereValue: text(where.value) };
      }
      if (name("not_performed") && keysIn(v, ["not_performed", "within"])) {
        return { kind: "not_performed", name: v.not_performed, within: v.within || "" };
      }
      for (const k of ["first_performed", "last_performed"]) {
        if (name(k) && keysIn(v, [k, "before", "after"])) {
          const moment = "after" in v ? "after" : "before";
          return { kind: k, name: v[k], moment, at: text(v[moment]) };
        }
      }
      if (name("email") && keysIn(v, ["email", "campaign_id", "within"])) {
        return { kind: "email", activity: v.email, campaign: v.campaign_id || "", within: v.within || "" };
      }
      for (const k of ["subscribed_to", "not_subscribed_to", "member_of"]) {
        if (name(k) && keysIn(v, [k])) return { kind: k, id: v[k] };
      }
    }
    return { kind: "json", raw: JSON.stringify(v) };
  }

  // A typed value as JSON: numbers and true/false as such, everything else as text.
  function typed(value) {
    const t = value.trim();
    if (t !== "" && !Number.isNaN(Number(t))) return Number(t);
    if (t === "true" || t === "false") return t === "true";
    return value;
  }

  function rule(field, op, value) {
    const out = { field, op };
    if (NO_VALUE.includes(op)) return out;
    if (LISTS.includes(op)) out.value = value.split(",").map((s) => typed(s.trim())).filter((s) => s !== "");
    else if (["before", "after", "within_last"].includes(op)) out.value = value;
    else out.value = typed(value);
    return out;
  }

  function toJson(node) {
    switch (node.kind) {
      case "group": {
        const inner = { [node.combine]: node.items.map(toJson) };
        return node.negate ? { not: inner } : inner;
      }
      case "attribute":
        return rule(node.field, node.op, node.value);
      case "performed": {
        const out = { performed: node.name };
        if (node.n !== "") out.times = { [node.cmp]: typed(node.n) };
        if (node.within) out.within = node.within;
        if (node.whereField) out.where = rule(node.whereField, node.whereOp, node.whereValue);
        return out;
      }
      case "not_performed":
        return node.within ? { not_performed: node.name, within: node.within } : { not_performed: node.name };
      case "first_performed":
      case "last_performed":
        return { [node.kind]: node.name, [node.moment]: node.at };
      case "email": {
        const out = { email: node.activity };
        if (node.campaign) out.campaign_id = node.campaign;
        if (node.within) out.within = node.within;
        return out;
      }
      case "json":
        try { return JSON.parse(node.raw); } catch { return node.raw; }
      default:
        return { [node.kind]: node.id };
    }
  }

  function fresh(kind) {
    switch (kind) {
      case "attribute": return { kind, field: "", op: "eq", value: "" };
      case "performed": return { kind, name: "", cmp: "at_least", n: "", within: "", whereField: "", whereOp: "eq", whereValue: "" };
      case "not_performed": return { kind, name: "", within: "" };
      case "first_performed": case "last_performed": return { kind, name: "", moment: "before", at: "" };
      case "email": return { kind, activity: choices.email[0] || "opened", campaign: "", within: "" };
      case "subscribed_to": case "not_subscribed_to": return { kind, id: (choices.topics[0] || [""])[0] };
      case "member_of": return { kind, id: (choices.segments[0] || [""])[0] };
      default: return { kind: "json", raw: "{}" };
    }
  }

  let model;
  try {
    model = fromJson(JSON.parse(area.value));
  } catch {
    return; // The JSON does not read: the textarea is the editor until it does.
  }
  if (model.kind !== "group") model = group("all", false, [model]);

  // ---- Drawing. Every control writes to its node; structure changes redraw. ----

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k.startsWith("data-")) e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const c of children) if (c !== null) e.append(c);
    return e;
  }

  function options(select, list, value) {
    for (const [v, label] of list) select.append(el("option", { value: v, textContent: label, selected: v === value }));
    if (value && !list.some(([v]) => v === value)) select.append(el("option", { value, textContent: value, selected: true }));
    return select;
  }

  // A labelled control bound to node[key].
  function control(node, key, label, make) {
    const input = make || el("input", {});
    input.value = node[key];
    input.setAttribute("data-key", key);
    input.setAttribute("aria-label", label);
    input.addEventListener(input.tagName === "SELECT" ? "change" : "input", () => {
      node[key] = input.value;
      changed(input.tagName === "SELECT" && input.dataset.redraw === "1");
    });
    return el("label", { class: "field" }, el("span", { class: "small muted", textContent: label }), input);
  }

  const select = (list, value, redraw) => {
    const s = options(el("select", {}), list, value);
    if (redraw) s.dataset.redraw = "1";
    return s;
  };
  const opList = () => choices.operators.map((o) => [o, o.replace(/_/g, " ")]);

  function fields(node) {
    switch (node.kind) {
      case "attribute":
        return [control(node, "field", "Attribute", el("input", { placeholder: "plan" })),
          control(node, "op", "Operator", select(opList(), node.op, true)),
          NO_VALUE.includes(node.op) ? null : control(node, "value", "Value", el("input", { placeholder: LISTS.includes(node.op) ? "a, b" : "" }))];
      case "performed":
        return [control(node, "name", "Event", el("input", { placeholder: "order_placed" })),
          control(node, "cmp", "Times", select(TIMES, node.cmp)),
          control(node, "n", "Count", el("input", { type: "number", min: "0", placeholder: "1" })),
          control(node, "within", "Within the last", el("input", { placeholder: "30d (blank: ever)" })),
          control(node, "whereField", "Where property", el("input", { placeholder: "total" })),
          control(node, "whereOp", "Operator", select(opList(), node.whereOp)),
          control(node, "whereValue", "Value", el("input", {}))];
      case "not_performed":
        return [control(node, "name", "Event", el("input", { placeholder: "login" })),
          control(node, "within", "Within the last", el("input", { placeholder: "14d (blank: ever)" }))];
      case "first_performed":
      case "last_performed":
        return [control(node, "name", "Event", el("input", {})),
          control(node, "moment", "When", select([["before", "before"], ["after", "after"]], node.moment)),
          control(node, "at", "Time", el("input", { placeholder: "2026-01-31" }))];
      case "email":
        return [control(node, "activity", "Email", select(choices.email.map((e) => [e, e]), node.activity)),
          control(node, "campaign", "Campaign id", el("input", { placeholder: "cmp_… (blank: any)" })),
          control(node, "within", "Within the last", el("input", { placeholder: "30d (blank: ever)" }))];
      case "subscribed_to":
      case "not_subscribed_to":
        return [control(node, "id", "Topic", select(choices.topics.map(([id, name]) => [id, name]), node.id))];
      case "member_of":
        return [control(node, "id", "Segment", select(choices.segments.map(([id, name]) => [id, name]), node.id))];
      default:
        return [control(node, "raw", "JSON", el("textarea", { rows: 2, class: "mono" }))];
    }
  }

  const join = (path, key) => (path ? `${path}.${key}` : key);

  function draw(node, path, parent, index) {
    if (node.kind === "group") {
      const inner = node.negate ? join(path, "not") : path;
      const box = el("div", { class: "condition group", "data-path": path });
      const combine = select([["all", "All of"], ["any", "Any of"]], node.combine, true);
      combine.setAttribute("data-key", "combine");
      combine.setAttribute("aria-label", "Combine");
      combine.addEventListener("change", () => { node.combine = combine.value; changed(true); });
      const negate = el("input", { type: "checkbox", checked: node.negate });
      negate.setAttribute("data-key", "not");
      negate.addEventListener("change", () => { node.negate = negate.checked; changed(true); });
      const add = (kind) => el("button", { type: "button", class: "small", "data-add": kind, textContent: kind === "group" ? "+ Group" : "+ Condition",
        onclick: () => { node.items.push(kind === "group" ? group("all", false, [fresh("attribute")]) : fresh("attribute")); changed(true); } });
      const head = el("div", { class: "add" }, el("label", { class: "check" }, negate, "Not"), combine,
        add("condition"), add("group"), parent ? remove(parent, index) : null);
      box.append(head);
      node.items.forEach((item, i) => box.append(draw(item, join(inner, `${node.combine}[${i}]`), node, i)));
      return box;
    }
    const kind = select(KINDS, node.kind);
    kind.setAttribute("data-key", "kind");
    kind.setAttribute("aria-label", "Condition");
    kind.addEventListener("change", () => { parent.items[index] = fresh(kind.value); changed(true); });
    return el("div", { class: "condition rule-row", "data-path": path },
      el("div", { class: "add" }, kind, remove(parent, index)),
      el("div", { class: "fields" }, ...fields(node)));
  }

  function remove(parent, index) {
    return el("button", { type: "button", class: "small link", textContent: "Remove",
      onclick: () => { parent.items.splice(index, 1); changed(true); } });
  }

  function redraw() {
    root.replaceChildren(draw(model, "", null, 0));
  }

  // ---- Errors next to their condition: `all[0].op` goes under that row's operator. ----

  function place(path, message) {
    for (const old of root.querySelectorAll(".builder-error")) old.remove();
    let row = null;
    for (const candidate of root.querySelectorAll("[data-path]")) {
      const p = candidate.dataset.path;
      if (p === path || path.startsWith(`${p}.`) || path.startsWith(`${p}[`) || p === "") {
        if (!row || p.length >= row.dataset.path.length) row = candidate;
      }
    }
    // A whole-definition error about a segment or topic: the row that names it.
    if (path === "") {
      for (const sel of root.querySelectorAll("[data-key=id]")) {
        if (sel.value && message.includes(sel.value)) row = sel.closest("[data-path]");
      }
    }
    if (!row) return;
    const rest = path.slice(row.dataset.path.length).replace(/^\./, "").split(/[.[]/)[0];
    const target = (rest && row.querySelector(`:scope > .fields [data-key="${rest}"], :scope > .add [data-key="${rest}"]`)) || null;
    const note = el("p", { class: "field-error builder-error", textContent: message });
    if (target) target.closest("label, .add").after(note);
    else row.append(note);
  }

  // ---- Changes: write the JSON, count again shortly after the last one. ----

  let timer = null;
  let asked = 0;
  async function recount() {
    const ask = ++asked;
    const body = new URLSearchParams({ csrf: form.elements.csrf.value, definition: area.value, segment: root.dataset.segment });
    try {
      const response = await fetch(root.dataset.preview, { method: "POST", body, credentials: "same-origin" });
      if (ask !== asked || response.redirected) return;
      count.innerHTML = await response.text();
      const error = count.querySelector("[data-path]");
      if (error) place(error.dataset.path, error.textContent);
      else for (const old of root.querySelectorAll(".builder-error")) old.remove();
    } catch {
      // Offline for a moment: the next change counts again.
    }
  }

  function changed(structure) {
    if (structure) redraw();
    area.value = JSON.stringify(toJson(model), null, 2);
    clearTimeout(timer);
    timer = setTimeout(recount, 300);
  }

  // Typing in the JSON redraws the builder at once (not on "change", which comes as the
  // field loses focus: a redraw then would move the Save button away from a click).
  area.addEventListener("input", () => {
    try {
      const read = fromJson(JSON.parse(area.value));
      model = read.kind === "group" ? read : group("all", false, [read]);
      redraw();
      clearTimeout(timer);
      timer = setTimeout(recount, 300);
    } catch {
      // Not JSON yet: the builder keeps the last definition that was.
    }
  });

  redraw();
  root.hidden = false;
  const shown = document.getElementById("error-definition");
  if (shown) place(shown.dataset.path, shown.dataset.message);
  recount();
})();
