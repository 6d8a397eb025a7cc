// Short-lived notices at the bottom of the screen.
import { h } from './dom.js';

export function toast(message, kind = 'info', { timeout = 5000, testid, action } = {}) {
  const box = document.getElementById('toasts');
  if (!box) return;
  const close = () => el.remove();
  const el = h('div', { class: `toast toast--${kind}`, role: kind === 'error' ? 'alert' : 'status', testid },
    h('span', { class: 'toast__text', text: message }),
    action ? h('button', { class: 'toast__action', type: 'button', text: action.label, onclick: () => { close(); action.run(); } }) : null,
    h('button', { class: 'toast__close', type: 'button', 'aria-label': 'Dismiss', onclick: close, text: '×' }));
  box.appendChild(el);
  if (timeout) setTimeout(close, timeout);
  return close;
}
