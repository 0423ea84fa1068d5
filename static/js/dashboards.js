// Saved dashboards. Edit page: add a widget (a copy of the formset's empty form), move widgets up and
// down (the hidden ORDER fields follow the page order, so the server saves what the editor sees) and
// remove one (its DELETE box, the fieldset hidden). Detail page: a delete button asks first.
(function () {
  "use strict";

  var form = document.getElementById("dashboard-form");
  if (form) {
    var list = document.getElementById("widget-forms");
    var template = document.getElementById("widget-template");
    var total = form.querySelector('input[name="widgets-TOTAL_FORMS"]');

    var renumber = function () {
      var n = 0;
      list.querySelectorAll("[data-widget-form]").forEach(function (fieldset) {
        var order = fieldset.querySelector('input[name$="-ORDER"]');
        var removed = fieldset.querySelector('input[name$="-DELETE"]');
        if (removed && removed.checked) { fieldset.hidden = true; if (order) { order.value = ""; } return; }
        n += 1;
        if (order) { order.value = String(n); }
        var number = fieldset.querySelector("[data-widget-number]");
        if (number) { number.textContent = String(n); }
      });
    };

    list.addEventListener("click", function (event) {
      var fieldset = event.target.closest("[data-widget-form]");
      if (!fieldset) { return; }
      var sibling = null;
      if (event.target.matches("[data-widget-up]")) {
        sibling = fieldset.previousElementSibling;
        while (sibling && sibling.hidden) { sibling = sibling.previousElementSibling; }
        if (sibling) { list.insertBefore(fieldset, sibling); }
      } else if (event.target.matches("[data-widget-down]")) {
        sibling = fieldset.nextElementSibling;
        while (sibling && sibling.hidden) { sibling = sibling.nextElementSibling; }
        if (sibling) { list.insertBefore(sibling, fieldset); }
      } else { return; }
      renumber();
    });
    list.addEventListener("change", function (event) {
      if (event.target.matches('input[name$="-DELETE"]')) { renumber(); }
    });
    form.querySelector("[data-widget-add]").addEventListener("click", function () {
      var index = Number(total.value);
      var html = template.innerHTML.replace(/__prefix__/g, String(index));
      list.insertAdjacentHTML("beforeend", html);
      total.value = String(index + 1);
      renumber();
    });
    renumber();
  }

  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (event) {
      if (!window.confirm(f.dataset.confirm)) { event.preventDefault(); }
    });
  });
})();
