// provkit console: progressive enhancement only; every page works without it.
// Confirms destructive forms, and filters a long table as one types.
document.addEventListener("submit", function (e) {
  var msg = e.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) { e.preventDefault(); }
});
document.addEventListener("input", function (e) {
  var id = e.target.getAttribute("data-filter");
  if (!id) { return; }
  var q = e.target.value.toLowerCase();
  document.querySelectorAll("#" + id + " tbody tr").forEach(function (tr) {
    tr.hidden = q !== "" && tr.textContent.toLowerCase().indexOf(q) < 0;
  });
});
