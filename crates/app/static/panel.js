// The panel's own script (htmx does the rest). Upload progress: the share of the file
// sent, then a note while the server checks every row; the bar keeps in `data-sent` the
// bytes the browser reported sent, so a test can see the progress was followed.
document.addEventListener('htmx:xhr:progress', function (event) {
  var bar = document.getElementById('upload-progress');
  var label = document.getElementById('upload-progress-label');
  if (!bar || !label || !event.detail.lengthComputable) return;
  bar.hidden = false;
  bar.max = event.detail.total;
  bar.value = event.detail.loaded;
  bar.dataset.sent = String(event.detail.loaded);
  label.textContent = event.detail.loaded < event.detail.total
    ? Math.round(100 * event.detail.loaded / event.detail.total) + '% sent'
    : 'sent; checking every row…';
});
document.addEventListener('htmx:afterRequest', function () {
  var bar = document.getElementById('upload-progress');
  var label = document.getElementById('upload-progress-label');
  if (bar) bar.hidden = true;
  if (label) label.textContent = '';
});
