/* Scale the fixed 1920x1080 wall canvas to fill any 16:9 screen without scrollbars. */
(function () {
  function fit() {
    var s = Math.min(window.innerWidth / 1920, window.innerHeight / 1080);
    document.documentElement.style.setProperty('--wall-scale', String(s));
    document.body.classList.toggle('wall-mode', !!document.querySelector('.wall'));
  }
  window.addEventListener('resize', fit);
  new MutationObserver(fit).observe(document.documentElement, {childList: true, subtree: true});
  fit();
})();
