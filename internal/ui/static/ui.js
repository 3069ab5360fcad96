// fusebox dashboard: live host cards from the event stream, and countdowns.
// The pages read without it; no polling: a card is fetched again only when
// an event says its host changed.
(function () {
  'use strict';

  function fmt(s) {
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm' + String(s % 60).padStart(2, '0') + 's';
    return Math.floor(s / 3600) + 'h' + String(Math.floor(s / 60) % 60).padStart(2, '0') + 'm';
  }

  function tick() {
    document.querySelectorAll('[data-until]').forEach(function (el) {
      var t = Date.parse(el.dataset.until);
      if (isNaN(t)) return;
      var s = Math.round((t - Date.now()) / 1000);
      el.textContent = s > 0 ? 'in ' + fmt(s) : 'now';
    });
  }
  tick();
  setInterval(tick, 1000);

  var body = document.body;
  body.dataset.loadedAt = String(Date.now()); // a marker that a reload would lose

  // A running job's page: follow its output (newline-delimited JSON), and
  // reload once it ends to show how.
  var follow = document.getElementById('follow');
  if (follow && window.fetch && window.TextDecoder) {
    var out = document.getElementById('follow-out');
    var note = document.getElementById('follow-note');
    fetch('/ui/jobs/' + encodeURIComponent(follow.dataset.job) + '/logs?follow=true', { credentials: 'same-origin' })
      .then(function (r) {
        if (!r.ok || !r.body) throw new Error('log follow: ' + r.status);
        var reader = r.body.getReader(), dec = new TextDecoder(), buf = '';
        function line(l) {
          if (!l) return;
          var ev = JSON.parse(l);
          if (ev.data) out.textContent += ev.data;
          if (ev.error) note.textContent = 'The follow stopped: ' + ev.error;
          if (ev.end) { note.textContent = 'Ended: ' + ev.state + '.'; location.reload(); }
        }
        function pump() {
          return reader.read().then(function (res) {
            if (res.done) { line(buf); return; }
            buf += dec.decode(res.value, { stream: true });
            var parts = buf.split('\n');
            buf = parts.pop();
            parts.forEach(line);
            return pump();
          });
        }
        return pump();
      })
      .catch(function (e) { note.textContent = 'Following the output failed (' + e.message + '): reload to see it.'; });
  }

  if (body.dataset.live !== 'fleet' || !window.EventSource) return;

  // One fetch per fragment at a time; an event during a fetch asks for one more.
  var busy = {};
  function refresh(key, url, apply) {
    if (busy[key]) { busy[key] = 'again'; return; }
    busy[key] = true;
    fetch(url, { credentials: 'same-origin', cache: 'no-store' })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(new Error(url + ': ' + r.status)); })
      .then(function (html) { apply(html); tick(); })
      .catch(function (e) { console.warn('fusebox:', e); })
      .finally(function () {
        var again = busy[key] === 'again';
        busy[key] = false;
        if (again) refresh(key, url, apply);
      });
  }

  function parse(html) {
    var t = document.createElement('template');
    t.innerHTML = html.trim();
    return t.content.firstElementChild;
  }

  function refreshCard(host) {
    refresh('host:' + host, '/ui/hosts/' + encodeURIComponent(host) + '/card', function (html) {
      var old = document.getElementById('host-' + host);
      var card = parse(html);
      if (!old || !card) return;
      // Keep what the operator is typing.
      var typed = old.querySelector('input[name=reason]');
      var fresh = card.querySelector('input[name=reason]');
      if (typed && fresh) fresh.value = typed.value;
      var focused = typed && document.activeElement === typed;
      old.replaceWith(card);
      if (focused) fresh.focus();
      body.dataset.updates = String(Number(body.dataset.updates || 0) + 1);
    });
  }

  function refreshBreakers() {
    refresh('breakers', '/ui/breakers', function (html) {
      var box = document.getElementById('breakers');
      if (box) box.innerHTML = html;
    });
  }

  var live = document.getElementById('live');
  // since: what happened after this page was rendered; a reconnect resumes
  // from the last event seen (the browser sends Last-Event-ID).
  var es = new EventSource('/ui/events?type=host.breaker,host.state,operator.action,breaker,job.transition&since=' +
    encodeURIComponent(body.dataset.since || '0s'));
  es.onopen = function () { live.textContent = 'live'; live.className = 'live on'; };
  es.onerror = function () { live.textContent = 'reconnecting…'; live.className = 'live off'; };
  ['host.breaker', 'host.state', 'operator.action'].forEach(function (type) {
    es.addEventListener(type, function (e) {
      var ev = JSON.parse(e.data);
      if (ev.host) refreshCard(ev.host);
      refreshBreakers();
    });
  });
  es.addEventListener('breaker', refreshBreakers);
  es.addEventListener('job.transition', function () {
    refresh('queue', '/ui/queue', function (html) {
      var box = document.getElementById('queue');
      if (box) box.innerHTML = html;
    });
  });
})();
