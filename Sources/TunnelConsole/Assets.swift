/// The console's own stylesheet and player script, compiled into the binary: the pages need
/// nothing from the network or from other packages except xterm.js (`XtermBundle`).
enum Assets {
    static let stylesheet = #"""
        body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d1d1f; background: #fafafa; }
        header { display: flex; gap: 2em; align-items: center; padding: .6em 1.2em; background: #22303c; color: #fff; }
        header a { color: #cfe3ff; margin-right: 1em; }
        main { padding: 0 1.2em 2em; }
        .banner { padding: .7em 1.2em; border-bottom: 1px solid #0002; }
        .banner.verified { background: #e3f6e5; color: #0d4a17; }
        .banner.broken { background: #b3121b; color: #fff; font-size: 1.05em; }
        .banner.broken a { color: #fff; font-weight: bold; }
        table { border-collapse: collapse; margin: .8em 0; background: #fff; }
        th, td { border: 1px solid #d6d6d6; padding: .25em .55em; text-align: left; vertical-align: top; }
        th { background: #eef1f4; }
        td { overflow-wrap: anywhere; max-width: 40em; }
        .filters { display: flex; flex-wrap: wrap; gap: .6em 1em; align-items: end; padding: .8em; background: #fff; border: 1px solid #ddd; }
        .filters input { width: 11em; }
        .outcome.good { color: #0d6a1f; }
        .outcome.refused { color: #8a5a00; }
        .outcome.bad { color: #b3121b; font-weight: bold; }
        .error, .bad-record, .sha.bad { background: #fde7e8; border-left: 4px solid #b3121b; padding: .5em .8em; }
        .sha.good { background: #e3f6e5; border-left: 4px solid #0d6a1f; padding: .5em .8em; }
        .rule { background: #eef4ff; padding: .5em .8em; }
        pre.raw { white-space: pre-wrap; overflow-wrap: anywhere; background: #fff; border: 1px solid #ddd; padding: .6em; }
        .controls { display: flex; gap: 1em; align-items: center; margin: .6em 0; }
        #seek { width: 24em; }
        #keystrokes li.played { color: #888; }
        #keystrokes code { background: #eee; padding: 0 .3em; }
        """#

    /// The shell player: fetches the asciicast, checks its SHA-256 against the close record
    /// (through the browser's WebCrypto), then plays it into xterm.js in screen-reader mode.
    static let player = #"""
        (function () {
          'use strict';
          var section = document.getElementById('player');
          if (!section || typeof Terminal === 'undefined') {
            if (section) document.getElementById('player-status').textContent = 'xterm.js is not available';
            return;
          }
          var controls = section.querySelector('.controls');
          var playButton = document.getElementById('play'), seek = document.getElementById('seek');
          var clock = document.getElementById('clock'), status = document.getElementById('player-status');
          var speedInput = document.getElementById('speed'), idleInput = document.getElementById('idle');
          var keystrokes = document.getElementById('keystrokes');
          var events = [], times = [], term = null, next = 0, now = 0, duration = 0, timer = null, last = 0;
          controls.hidden = false;

          function hex(buffer) {
            return Array.prototype.map.call(new Uint8Array(buffer), function (b) { return ('0' + b.toString(16)).slice(-2); }).join('');
          }
          function retime() {
            var idle = Math.max(0.1, parseFloat(idleInput.value) || 2), previous = 0, at = 0;
            times = events.map(function (event) { at += Math.min(Math.max(0, event[0] - previous), idle); previous = event[0]; return at; });
            duration = times.length ? times[times.length - 1] : 0;
          }
          function show() {
            clock.textContent = now.toFixed(1) + ' / ' + duration.toFixed(1) + ' s';
            seek.value = duration > 0 ? Math.round(1000 * now / duration) : 0;
            Array.prototype.forEach.call(keystrokes.children, function (item) {
              item.classList.toggle('played', parseFloat(item.dataset.at) <= now);
            });
          }
          function writeUntil(limit) {
            var text = '';
            while (next < events.length && times[next] <= limit) {
              if (events[next][1] === 'o') text += events[next][2];
              next++;
            }
            if (text) term.write(text);
          }
          function stop(state) {
            if (timer) clearInterval(timer);
            timer = null;
            playButton.textContent = 'Play';
            section.dataset.state = state;
          }
          function tick() {
            var wall = performance.now();
            now = Math.min(duration, now + (wall - last) / 1000 * parseFloat(speedInput.value));
            last = wall;
            writeUntil(now);
            show();
            if (next >= events.length) { stop('ended'); status.textContent = 'end of recording'; }
          }
          function play() {
            if (timer) { stop('paused'); return; }
            if (next >= events.length) jump(0);
            last = performance.now();
            timer = setInterval(tick, 40);
            playButton.textContent = 'Pause';
            section.dataset.state = 'playing';
          }
          function jump(to) {
            term.reset();
            next = 0;
            now = to;
            writeUntil(to);
            show();
          }
          function load(buffer) {
            var lines = new TextDecoder().decode(buffer).split('\n').filter(function (line) { return line.trim() !== ''; });
            var header = JSON.parse(lines.shift());
            events = lines.map(function (line) { return JSON.parse(line); }).filter(function (event) {
              return Array.isArray(event) && event.length === 3 && typeof event[0] === 'number' && typeof event[2] === 'string';
            });
            retime();
            events.forEach(function (event, index) {
              if (event[1] !== 'i') return;
              var item = document.createElement('li'), code = document.createElement('code');
              item.dataset.at = times[index];
              item.appendChild(document.createTextNode(times[index].toFixed(1) + ' s (recorded at ' + event[0].toFixed(2) + ' s): '));
              code.textContent = JSON.stringify(event[2]);
              item.appendChild(code);
              keystrokes.appendChild(item);
            });
            if (!keystrokes.children.length) {
              var none = document.createElement('li');
              none.textContent = 'No keystrokes in this recording (the policy records output only for these roles).';
              keystrokes.appendChild(none);
            }
            term = new Terminal({ cols: header.width || 80, rows: header.height || 24, screenReaderMode: true, disableStdin: true, scrollback: 5000 });
            term.open(document.getElementById('terminal'));
            show();
            section.dataset.state = 'ready';
          }

          playButton.addEventListener('click', play);
          seek.addEventListener('input', function () { jump(duration * seek.value / 1000); });
          idleInput.addEventListener('change', function () { var at = now; retime(); jump(Math.min(at, duration)); });
          fetch(section.dataset.cast, { credentials: 'same-origin' }).then(function (response) {
            if (!response.ok) throw new Error('the recording could not be fetched (HTTP ' + response.status + ')');
            return response.arrayBuffer();
          }).then(function (buffer) {
            return crypto.subtle.digest('SHA-256', buffer).then(function (digest) {
              var expected = section.dataset.sha256, actual = hex(digest);
              var mark = document.getElementById('sha-mark');
              if (expected && actual !== expected) {
                mark.className = 'sha bad';
                mark.textContent = 'The recording differs from its close record: SHA-256 ' + actual + ', recorded ' + expected + '. Playing it anyway, as evidence of the change.';
                section.dataset.sha = 'mismatch';
              } else {
                section.dataset.sha = 'match';
              }
              load(buffer);
            });
          }).catch(function (error) { status.textContent = String(error.message || error); section.dataset.state = 'error'; });
        })();
        """#
}
