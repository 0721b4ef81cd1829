/* Keeps what a person types in the portal's forms, so that a form sent after the session ended
 * (the hub did nothing and showed the login page) is filled in again when they are back on its
 * page. The copy lives in this tab's sessionStorage only (gone when the tab closes), under the
 * person's id and the form's address; passwords, hidden fields (the CSRF token) and forms with a
 * password (login) are never kept. A copy is dropped when its form worked — the portal answers
 * every form that worked with a redirect (Post/Redirect/Get), so the next page is a GET one —
 * and every copy on logout or when someone else logs in in the tab. A page answering a POST
 * (body[data-form-answer]: the form was refused, what was typed is shown again) or the login
 * page saying a form was not sent ([data-form-not-sent]) keeps the copy. Every logout form
 * ([data-logout]: the menu's, the home page's) forgets the copies. On a page answering a form,
 * the list of what was refused ([data-form-errors]) gets the focus, so that it is read first
 * (without the script, the form's address names that list and the browser scrolls to it). */
(function () {
  "use strict";
  var PREFIX = "puente.form.";
  var SENT = "puente.form-sent"; // the key of the form just submitted, until the next page
  var SKIPPED = ["password", "hidden", "submit", "button", "reset", "file", "image"];
  var store;
  try {
    store = window.sessionStorage;
    store.getItem(SENT);
  } catch (error) {
    return; // storage off (a private mode, a policy): the forms work as before, unkept
  }
  var body = document.body;
  var person = body.getAttribute("data-person");

  function keys() {
    var found = [];
    for (var i = 0; i < store.length; i += 1) {
      var key = store.key(i);
      if (key && key.indexOf(PREFIX) === 0) found.push(key);
    }
    return found;
  }

  function forget(except) {
    keys().forEach(function (key) {
      if (!except || key.indexOf(except) !== 0) store.removeItem(key);
    });
    if (!except) store.removeItem(SENT);
  }

  function kept(field) {
    var type = (field.type || "").toLowerCase();
    return field.name && field.name !== "csrf_token" && !field.disabled &&
      SKIPPED.indexOf(type) < 0 && field.autocomplete !== "off";
  }

  function keepable(form) {
    return (form.method || "").toLowerCase() === "post" &&
      !form.querySelector("input[type=password]");
  }

  function keyOf(form) {
    return PREFIX + person + "|" + new URL(form.action, window.location.href).pathname;
  }

  function read(form) {
    var values = {};
    Array.prototype.forEach.call(form.elements, function (field) {
      if (!kept(field)) return;
      var list = values[field.name] || (values[field.name] = []);
      if (field.type === "checkbox" || field.type === "radio") {
        if (field.checked) list.push(field.value);
      } else if (field.type === "select-multiple") {
        Array.prototype.forEach.call(field.selectedOptions, function (option) {
          list.push(option.value);
        });
      } else {
        list.push(field.value);
      }
    });
    return values;
  }

  function save(form, submitted) {
    try {
      store.setItem(keyOf(form), JSON.stringify(read(form)));
      if (submitted) store.setItem(SENT, keyOf(form));
    } catch (error) {
      // full: this form is not kept, and nothing else breaks
    }
  }

  /* Puts the copy back; true when it changed what the page showed. */
  function restore(form, values) {
    var changed = false;
    var seen = {};
    Array.prototype.forEach.call(form.elements, function (field) {
      if (!kept(field) || !Object.prototype.hasOwnProperty.call(values, field.name)) return;
      var list = values[field.name];
      if (field.type === "checkbox" || field.type === "radio") {
        var on = list.indexOf(field.value) >= 0;
        changed = changed || field.checked !== on;
        field.checked = on;
      } else if (field.type === "select-multiple") {
        Array.prototype.forEach.call(field.options, function (option) {
          var chosen = list.indexOf(option.value) >= 0;
          changed = changed || option.selected !== chosen;
          option.selected = chosen;
        });
      } else {
        var index = seen[field.name] || 0;
        seen[field.name] = index + 1;
        if (index < list.length && field.value !== list[index]) {
          field.value = list[index];
          changed = true;
        }
      }
    });
    return changed;
  }

  function tell(form) {
    var spanish = document.documentElement.lang !== "en";
    var note = document.createElement("p");
    note.className = "notice";
    note.setAttribute("role", "status");
    note.textContent = spanish
      ? "Se recuperó lo que había escrito en este formulario y aún no se había enviado. Revíselo antes de enviarlo."
      : "What you had typed in this form, and not yet sent, was put back. Check it before sending.";
    form.parentNode.insertBefore(note, form);
  }

  var sent = store.getItem(SENT);
  store.removeItem(SENT);
  var notDone = body.hasAttribute("data-form-answer") ||
    document.querySelector("[data-form-not-sent]") !== null;
  if (sent && !notDone) store.removeItem(sent); // that form worked

  Array.prototype.forEach.call(document.querySelectorAll("form[data-logout]"), function (logout) {
    logout.addEventListener("submit", function () { forget(null); });
  });
  if (!person) return; // the login page and public pages have no forms to keep
  forget(PREFIX + person + "|"); // another person's copies, from before a login in this tab

  var main = document.querySelector("main") || body;
  Array.prototype.forEach.call(main.querySelectorAll("form"), function (form) {
    if (!keepable(form)) return;
    var copy = store.getItem(keyOf(form));
    if (copy) {
      try {
        if (restore(form, JSON.parse(copy))) tell(form);
      } catch (error) {
        store.removeItem(keyOf(form));
      }
    }
    var keep = function () { save(form); };
    form.addEventListener("input", keep);
    form.addEventListener("change", keep);
    form.addEventListener("submit", function () { save(form, true); });
  });

  if (body.hasAttribute("data-form-answer")) {
    var refused = document.querySelector("[data-form-errors]");
    if (refused && refused.focus) refused.focus();
  }
})();
