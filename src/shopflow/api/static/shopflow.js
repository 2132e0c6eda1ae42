/*
 * Shopflow on-site script (docs/onsite.md). Plain ES2017, no framework, no build step.
 *
 *   <script src="https://SHOPFLOW/js/shopflow.js" data-key="pk_..." async></script>
 *
 * Keeps a first-party anonymous id cookie (sf_id), records page views, products viewed, cart and
 * checkout, and "Active on Site" (at most every 30 minutes), and offers shopflow.track(),
 * identify(), consent(), form(), backInStock() and pushPrompt(). When the workspace requires
 * consent, nothing is stored and nothing is sent until the page calls shopflow.consent(true).
 */
(function () {
  'use strict';

  var script = document.currentScript ||
    document.querySelector('script[data-key][src*="shopflow.js"]');
  if (!script || window.__shopflowLoaded) return;
  window.__shopflowLoaded = true;

  var KEY = script.getAttribute('data-key') || '';
  var API = new URL(script.src, location.href).origin + '/api/v1/browser/';
  var ID_COOKIE = 'sf_id';
  var CONSENT_COOKIE = 'sf_consent';
  var ACTIVE_KEY = 'sf_active';
  var ACTIVE_EVERY_MS = 30 * 60 * 1000;
  var FLUSH_MS = 1000;
  var MAX_BATCH = 20;
  var YEAR_S = 365 * 24 * 3600;

  var config = null;          // from /config: {require_consent, vapid_public_key}
  var consent = null;         // true / false once the page said so (or a cookie remembers yes)
  var queue = [];             // events waiting to be sent
  var pendingToken = null;    // the _sf token of a tracked email link, until it can be sent
  var timer = null;
  var anonId = null;

  // --- cookies and ids ------------------------------------------------------------------------

  function readCookie(name) {
    var found = document.cookie.split('; ').find(function (c) { return c.indexOf(name + '=') === 0; });
    return found ? decodeURIComponent(found.slice(name.length + 1)) : null;
  }

  function writeCookie(name, value, maxAge) {
    var secure = location.protocol === 'https:' ? '; Secure' : '';
    document.cookie = name + '=' + encodeURIComponent(value) + '; Max-Age=' + maxAge +
      '; Path=/; SameSite=Lax' + secure;
  }

  function randomId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, function (b) { return b.toString(16).padStart(2, '0'); }).join('');
  }

  // An explicit "no" always wins; otherwise consent is needed only when the workspace says so.
  function mayStore() {
    if (!config || consent === false) return false;
    return !config.require_consent || consent === true;
  }

  // The anonymous id: created (and its cookie set) only once storing is allowed.
  function anonymousId() {
    if (anonId) return anonId;
    var stored = readCookie(ID_COOKIE);
    if (stored && /^[A-Za-z0-9_-]{8,64}$/.test(stored)) anonId = stored;
    else if (mayStore()) anonId = randomId();
    if (anonId && mayStore()) writeCookie(ID_COOKIE, anonId, YEAR_S); // refresh its lifetime
    return anonId;
  }

  // --- sending ----------------------------------------------------------------------------------

  function url(path) { return API + path + '?key=' + encodeURIComponent(KEY); }

  // text/plain JSON: a "simple" cross-origin request, so the browser needs no preflight.
  function post(path, body, beacon) {
    var data = JSON.stringify(body);
    if (beacon && navigator.sendBeacon &&
        navigator.sendBeacon(url(path), new Blob([data], { type: 'text/plain;charset=UTF-8' }))) {
      return Promise.resolve({ ok: true, status: 202, body: {} });
    }
    return fetch(url(path), {
      method: 'POST', body: data, keepalive: data.length < 60000, credentials: 'omit',
      headers: { 'Content-Type': 'text/plain;charset=UTF-8' }
    }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (json) {
        return { ok: resp.ok, status: resp.status, body: json };
      });
    });
  }

  function page() {
    return { url: location.href, path: location.pathname, title: document.title, referrer: document.referrer };
  }

  function enqueue(event) {
    event.messageId = randomId();
    event.timestamp = new Date().toISOString();
    event.context = { page: page() };
    queue.push(event);
    schedule();
  }

  function schedule() {
    if (!mayStore()) return; // kept in memory only; sent once consent is given
    if (queue.length >= MAX_BATCH) { flush(false); return; }
    if (!timer) timer = setTimeout(function () { flush(false); }, FLUSH_MS);
  }

  function flush(beacon) {
    clearTimeout(timer);
    timer = null;
    if (!mayStore() || !anonymousId()) return Promise.resolve();
    // The link's token first: the answer may hand this browser a new anonymous id.
    var first = Promise.resolve();
    if (pendingToken) {
      first = post('identify', { anonymousId: anonId, token: pendingToken, consent: consent === true }, false)
        .then(function (res) {
          if (res.body && res.body.anonymousId) { anonId = res.body.anonymousId; writeCookie(ID_COOKIE, anonId, YEAR_S); }
        }, function () { /* the events still go */ });
      pendingToken = null;
    }
    return first.then(function () {
      var sending = [];
      while (queue.length) {
        const batch = queue.splice(0, MAX_BATCH);
        sending.push(post('events', {
          anonymousId: anonId, consent: consent === true, sentAt: new Date().toISOString(), events: batch
        }, beacon).catch(function () { queue = batch.concat(queue); })); // offline: try again later
      }
      return Promise.all(sending);
    });
  }

  // --- the public API -------------------------------------------------------------------------

  function track(name, properties) { enqueue({ type: 'track', event: String(name), properties: properties || {} }); }

  function identify(traits) { enqueue({ type: 'identify', traits: traits || {} }); }

  function pageView() { enqueue({ type: 'page', properties: {} }); }

  function setConsent(granted) {
    consent = granted === true;
    if (consent) {
      writeCookie(CONSENT_COOKIE, '1', YEAR_S);
      anonymousId();
      activity();
      flush(false);
    } else {
      queue = [];
      pendingToken = null;
      anonId = null;
      writeCookie(ID_COOKIE, '', 0);
      writeCookie(CONSENT_COOKIE, '', 0);
      try { localStorage.removeItem(ACTIVE_KEY); } catch (e) { /* storage may be off */ }
    }
  }

  // "Active on Site" at most every 30 minutes per browser (remembered only once storing is allowed).
  function activity() {
    if (!mayStore()) return;
    var last = 0;
    try { last = Number(localStorage.getItem(ACTIVE_KEY)) || 0; } catch (e) { /* no storage */ }
    if (Date.now() - last < ACTIVE_EVERY_MS) return;
    try { localStorage.setItem(ACTIVE_KEY, String(Date.now())); } catch (e) { /* no storage */ }
    track('Active on Site', {});
  }

  // --- page markup: products, cart and checkout buttons ---------------------------------------

  function productOf(el) {
    var holder = el && el.closest('[data-sf-product]');
    if (!holder) return {};
    try { return JSON.parse(holder.getAttribute('data-sf-product')) || {}; } catch (e) { return {}; }
  }

  function watchMarkup() {
    // <div data-sf-product='{"product_id": "42", ...}' data-sf-view>: this page shows that product.
    var viewed = document.querySelector('[data-sf-product][data-sf-view]');
    if (viewed) track('Viewed Product', productOf(viewed));
    document.addEventListener('click', function (e) {
      var target = e.target instanceof Element ? e.target : null;
      if (!target) return;
      var cart = target.closest('[data-sf-add-to-cart]');
      if (cart) track('Added to Cart', productOf(cart));
      if (target.closest('[data-sf-checkout]')) track('Started Checkout', {});
    }, true);
    // Forms declared in markup: <div data-sf-form="ID" data-sf-list="..." data-sf-title="...">
    // and <div data-sf-back-in-stock data-product-id="..." data-variant-id="...">.
    function attr(el, name) { return el.getAttribute(name) || undefined; }
    document.querySelectorAll('[data-sf-form]').forEach(function (el) {
      form({ id: attr(el, 'data-sf-form'), target: el, list: attr(el, 'data-sf-list'), title: attr(el, 'data-sf-title') });
    });
    document.querySelectorAll('[data-sf-back-in-stock]').forEach(function (el) {
      backInStock({ target: el, productId: attr(el, 'data-product-id'), variantId: attr(el, 'data-variant-id') });
    });
  }

  // --- forms ----------------------------------------------------------------------------------

  var STYLE = '.sf-form{font:15px/1.4 system-ui,sans-serif;color:#222;max-width:380px}' +
    '.sf-form h2{font-size:20px;margin:0 0 6px}.sf-form p{margin:0 0 10px}' +
    '.sf-form input[type=email]{width:100%;box-sizing:border-box;padding:10px;border:1px solid #bbb;border-radius:6px;margin:0 0 8px;font:inherit}' +
    '.sf-form button{padding:10px 16px;border:0;border-radius:6px;background:#1d4ed8;color:#fff;font:inherit;cursor:pointer}' +
    '.sf-form button:disabled{opacity:.5;cursor:default}.sf-form .sf-small{font-size:12px;color:#555}.sf-form .sf-msg{margin-top:8px;font-weight:600}' +
    '.sf-form .sf-msg.sf-err{color:#b91c1c}.sf-hp{position:absolute!important;left:-10000px;width:1px;height:1px;overflow:hidden}' +
    '.sf-overlay{position:fixed;inset:0;background:rgba(0,0,0,.45);display:flex;align-items:center;justify-content:center;z-index:2147483000}' +
    '.sf-popup{position:relative;background:#fff;padding:28px;border-radius:12px;box-shadow:0 10px 40px rgba(0,0,0,.3)}' +
    '.sf-close{position:absolute;top:8px;right:10px;border:0!important;background:none!important;color:#555!important;font-size:22px!important;padding:4px!important}' +
    '.sf-push{position:fixed;left:16px;bottom:16px;max-width:360px;background:#fff;padding:16px;border-radius:10px;box-shadow:0 4px 24px rgba(0,0,0,.25);z-index:2147483000}';

  function addStyle() {
    if (document.getElementById('sf-style')) return;
    var el = document.createElement('style');
    el.id = 'sf-style';
    el.textContent = STYLE;
    document.head.appendChild(el);
  }

  function h(tag, attrs, children) {
    var el = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'text') el.textContent = attrs[k]; else el.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) el.appendChild(c); });
    return el;
  }

  // A form with an email field, the hidden honeypot ("website": people never see it, bots fill it).
  function emailForm(opts, onSubmit) {
    addStyle();
    var n = Math.random().toString(36).slice(2, 8);
    var msg = h('p', { class: 'sf-msg', role: 'status', 'aria-live': 'polite' });
    var email = h('input', {
      type: 'email', name: 'email', id: 'sf-email-' + n, required: '', autocomplete: 'email', placeholder: 'you@example.com'
    });
    var honeypot = h('div', { class: 'sf-hp', 'aria-hidden': 'true' }, [
      h('label', { for: 'sf-website-' + n, text: 'Leave this empty' }),
      h('input', { type: 'text', name: 'website', id: 'sf-website-' + n, tabindex: '-1', autocomplete: 'off' })
    ]);
    var el = h('form', { class: 'sf-form', 'data-sf-form-id': opts.id || '', novalidate: '' }, [
      opts.title ? h('h2', { text: opts.title }) : null,
      opts.text ? h('p', { text: opts.text }) : null,
      h('label', { for: email.id, class: 'sf-small', text: 'Email' }), email, honeypot,
      h('button', { type: 'submit', text: opts.button || 'Subscribe' }),
      opts.consentText ? h('p', { class: 'sf-small', text: opts.consentText }) : null,
      msg
    ]);
    el.addEventListener('submit', function (e) {
      e.preventDefault();
      msg.className = 'sf-msg';
      msg.textContent = '';
      var body = {
        email: email.value.trim(), website: el.querySelector('[name=website]').value, page_url: location.href
      };
      if (mayStore() && anonymousId()) body.anonymousId = anonId;
      function fail(text) { msg.className = 'sf-msg sf-err'; msg.textContent = text; }
      onSubmit(body).then(function (res) {
        if (!res.ok) { fail((res.body && res.body.error) || 'Something went wrong; please try again.'); return; }
        msg.textContent = opts.success;
        el.querySelector('button').disabled = true;
      }, function () { fail('Could not reach the server; please try again.'); });
    });
    return el;
  }

  function place(el, target) {
    var node = typeof target === 'string' ? document.querySelector(target) : target;
    if (!node) throw new Error('shopflow: no element ' + target + ' to put the form in');
    node.appendChild(el);
  }

  // shopflow.form({id, list, title, text, consentText, button, target} | {popup: {delay, exitIntent, scroll}})
  function form(opts) {
    opts = Object.assign({
      title: 'Join our newsletter',
      success: 'Almost done: check your inbox and confirm your subscription.',
      consentText: 'Yes, email me news and offers. I can unsubscribe at any time.'
    }, opts || {});
    if (!opts.id) throw new Error('shopflow.form: an id is required');
    var el = emailForm(opts, function (body) {
      body.form = opts.id;
      if (opts.list) body.list = opts.list;
      body.consent_text = opts.consentText;
      return post('forms/subscribe', body, false);
    });
    if (!opts.popup) { place(el, opts.target); return el; }
    popup(el, opts);
    return el;
  }

  function popup(el, opts) {
    var shown = false;
    var seenKey = 'sf_popup_' + opts.id;
    try { if (sessionStorage.getItem(seenKey)) return; } catch (e) { /* no storage */ }
    var overlay = h('div', {
      class: 'sf-overlay', role: 'dialog', 'aria-modal': 'true', 'aria-label': opts.title
    });
    var box = h('div', { class: 'sf-popup' });
    var close = h('button', { type: 'button', class: 'sf-close', 'aria-label': 'Close', text: '\u00d7' });
    close.addEventListener('click', function () { overlay.remove(); });
    box.appendChild(close);
    box.appendChild(el);
    overlay.appendChild(box);
    function show() {
      if (shown) return;
      shown = true;
      document.body.appendChild(overlay);
      if (mayStore()) { try { sessionStorage.setItem(seenKey, '1'); } catch (e) { /* no storage */ } }
    }
    var p = opts.popup;
    if (typeof p.delay === 'number') setTimeout(show, p.delay * 1000);
    if (p.exitIntent) document.addEventListener('mouseout', function (e) { if (!e.relatedTarget && e.clientY <= 0) show(); });
    if (typeof p.scroll === 'number') {
      window.addEventListener('scroll', function () {
        var max = document.documentElement.scrollHeight - window.innerHeight;
        if (max > 0 && (window.scrollY / max) * 100 >= p.scroll) show();
      }, { passive: true });
    }
  }

  // shopflow.backInStock({target, productId, variantId}): "email me when it is back".
  function backInStock(opts) {
    opts = Object.assign({
      title: 'Out of stock',
      text: 'Get an email as soon as it is back.',
      button: 'Notify me',
      success: 'Thanks! We will email you when it is back in stock.'
    }, opts || {});
    if (!opts.productId) throw new Error('shopflow.backInStock: a productId is required');
    var el = emailForm(opts, function (body) {
      body.product_id = String(opts.productId);
      if (opts.variantId) body.variant_id = String(opts.variantId);
      return post('back-in-stock', body, false);
    });
    place(el, opts.target);
    return el;
  }

  // --- web push -------------------------------------------------------------------------------

  function b64ToBytes(text) {
    var raw = atob((text + '==='.slice((text.length + 3) % 4)).replace(/-/g, '+').replace(/_/g, '/'));
    return Uint8Array.from(raw, function (c) { return c.charCodeAt(0); });
  }

  // shopflow.pushPrompt({serviceWorker: '/push/sw.js', text}): ask, then subscribe with the VAPID key.
  function pushPrompt(opts) {
    opts = Object.assign({
      serviceWorker: '/push/sw.js', text: 'Get notified about offers and restocks?', allow: 'Allow', deny: 'No thanks'
    }, opts || {});
    return ready.then(function () {
      if (!config.vapid_public_key || !('serviceWorker' in navigator) || !('PushManager' in window)) return null;
      if (typeof Notification !== 'undefined' && Notification.permission !== 'default') return null;
      addStyle();
      var allow = h('button', { type: 'button', text: opts.allow });
      var deny = h('button', { type: 'button', text: opts.deny, style: 'background:#e5e7eb;color:#222;margin-left:8px' });
      var bar = h('div', { class: 'sf-push sf-form', role: 'dialog', 'aria-label': 'Notifications' }, [
        h('p', { text: opts.text }), allow, deny
      ]);
      deny.addEventListener('click', function () { bar.remove(); });
      allow.addEventListener('click', function () {
        bar.remove();
        subscribePush(opts.serviceWorker);
      });
      document.body.appendChild(bar);
      return bar;
    });
  }

  function subscribePush(worker) {
    return Notification.requestPermission().then(function (perm) {
      if (perm !== 'granted') return null;
      return navigator.serviceWorker.register(worker).then(function (reg) {
        var key = b64ToBytes(config.vapid_public_key);
        return reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
      }).then(function (sub) {
        if (!anonymousId()) anonId = randomId(); // subscribing is an explicit opt-in
        return post('push', { anonymousId: anonId, subscription: sub.toJSON() }, false);
      });
    });
  }

  // --- start ----------------------------------------------------------------------------------

  function takeLinkToken() {
    var params = new URLSearchParams(location.search);
    var token = params.get('_sf');
    if (!token) return;
    pendingToken = token;
    params.delete('_sf');
    var rest = params.toString();
    // The token leaves the address bar, so it is neither bookmarked nor shared.
    history.replaceState(history.state, '', location.pathname + (rest ? '?' + rest : '') + location.hash);
  }

  var ready = fetch(url('config'), { credentials: 'omit' }).then(function (resp) {
    if (!resp.ok) throw new Error('shopflow: /config answered ' + resp.status);
    return resp.json();
  }).then(function (cfg) {
    config = cfg;
    if (readCookie(CONSENT_COOKIE) === '1') consent = true;
    anonymousId();
    activity();
    schedule();
    if (pendingToken && mayStore()) flush(false);
  });
  ready.catch(function (err) { if (window.console) console.warn(String(err)); });

  takeLinkToken();
  pageView();
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', watchMarkup);
  else watchMarkup();
  document.addEventListener('visibilitychange', function () {
    if (document.visibilityState === 'hidden') flush(true);
  });
  window.addEventListener('pagehide', function () { flush(true); });

  var api = {
    track: track, identify: identify, page: pageView, consent: setConsent, form: form,
    backInStock: backInStock, pushPrompt: pushPrompt, flush: function () { return flush(false); },
    anonymousId: function () { return mayStore() ? anonymousId() : null; }, ready: ready
  };
  // Calls made before the script loaded: window.shopflow = [['track', 'X', {...}], ...].
  var early = Array.isArray(window.shopflow) ? window.shopflow : [];
  window.shopflow = api;
  early.forEach(function (call) { if (api[call[0]]) api[call[0]].apply(null, call.slice(1)); });
})();
