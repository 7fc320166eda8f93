/* Applies the saved colour theme before the first paint (loaded without defer; no inline script). */
(function () {
  'use strict';
  try {
    const saved = window.localStorage.getItem('chatbox_theme');
    if (saved === 'light' || saved === 'dark') document.documentElement.dataset.theme = saved;
  } catch {
    /* storage disabled: the system preference applies */
  }
})();
