// clearwatch dashboard: draws the fund-flow graph from the data attribute the server
// rendered (nodes already placed by the server's layout), with zoom, filters and
// expand-a-node, and small htmx helpers (reset a form after its swap, show a refused request).
// Times are rendered by the server in the user's time zone. No inline script anywhere;
// every page works without this file (htmx enhances plain forms and links).
(function () {
  'use strict';

  // Up to this many pairs, edges carry their labels from the start.
  var LABELLED_PAIRS = 30;
  var RANK_GAP = 280;
  var ROW_GAP = 64;
  // The page's font stack (app.css), so CJK holder names render in the graph too.
  var FONT = 'system-ui, "Noto Sans", "Noto Sans CJK SC", "WenQuanYi Zen Hei", "Microsoft YaHei", "PingFang SC", sans-serif';

  function nodeElement(n, dx, dy) {
    return { group: 'nodes', position: { x: n.x + dx, y: n.y + dy },
      data: { id: n.id, label: n.label, title: n.title, colour: n.colour, role: n.role,
        licensed: n.licensed ? 1 : 0, inferred: n.inferred ? 1 : 0, subject: n.subject ? 1 : 0 } };
  }

  function edgeElement(l) {
    return { group: 'edges', data: { id: l.id, source: l.source, target: l.target, label: l.label,
      full: l.label, colour: l.colour, kind: l.kind, currency: l.currency, exponent: l.exponent,
      times: l.times, amounts: l.amounts } };
  }

  // An amount as the server writes it: the currency's decimals, no thousands separators.
  function money(x, exponent) {
    return x.toFixed(exponent);
  }

  function drawGraph() {
    var el = document.getElementById('graph');
    if (!el || typeof window.cytoscape !== 'function') { return; }
    var data;
    try { data = JSON.parse(el.dataset.graph || '{}'); } catch (e) { return; }
    var elements = [];
    (data.nodes || []).forEach(function (n) { elements.push(nodeElement(n, 0, 0)); });
    (data.links || []).forEach(function (l) { elements.push(edgeElement(l)); });
    var cy = window.cytoscape({
      container: el,
      elements: elements,
      wheelSensitivity: 0.3,
      minZoom: 0.05,
      maxZoom: 4,
      style: [
        { selector: 'node', style: { 'background-color': 'data(colour)', 'label': 'data(label)', 'font-size': 10, 'font-family': FONT,
          'text-valign': 'bottom', 'text-margin-y': 4, 'width': 18, 'height': 18, 'color': '#222',
          'text-background-color': '#fff', 'text-background-opacity': 0.8, 'text-background-padding': 1 } },
        { selector: 'node[licensed = 1]', style: { 'border-width': 4, 'border-color': '#003b46', 'shape': 'round-rectangle' } },
        { selector: 'node[inferred = 1][licensed = 0]', style: { 'border-width': 2, 'border-style': 'dashed', 'border-color': '#38404d' } },
        { selector: 'node[subject = 1]', style: { 'width': 30, 'height': 30, 'font-weight': 'bold' } },
        { selector: 'node:selected', style: { 'overlay-color': '#1f5fbf', 'overlay-opacity': 0.25 } },
        { selector: 'edge', style: { 'width': 2, 'line-color': 'data(colour)', 'target-arrow-color': 'data(colour)',
          'target-arrow-shape': 'triangle', 'curve-style': 'bezier', 'opacity': 0.75 } },
        { selector: 'edge.labelled', style: { 'label': 'data(label)', 'font-size': 8, 'font-family': FONT, 'color': '#38404d',
          'text-background-color': '#fff', 'text-background-opacity': 0.85, 'text-background-padding': 1 } },
        { selector: '.filtered', style: { 'display': 'none' } }
      ],
      layout: { name: 'preset', fit: true, padding: 30 }
    });
    var labels = document.getElementById('graph-labels');
    if (labels) { labels.checked = (data.links || []).length <= LABELLED_PAIRS; }
    setupTools(cy, el);
    cy.on('tap', 'node', function (evt) { select(cy, evt.target); });
    cy.on('dbltap', 'node', function (evt) { expand(cy, evt.target); });
    el.setAttribute('data-drawn', String(cy.nodes().length));
    el.setAttribute('data-edges', String(cy.edges().length));
    window.clearwatchGraph = cy;
  }

  // Time range over every transaction of the graph, for the sliders.
  function timeSpan(cy) {
    var lo = Infinity, hi = -Infinity;
    cy.edges().forEach(function (e) {
      (e.data('times') || []).forEach(function (t) { lo = Math.min(lo, t); hi = Math.max(hi, t); });
    });
    return lo <= hi ? [lo, hi] : [0, 0];
  }

  function setupTools(cy, el) {
    var byId = function (id) { return document.getElementById(id); };
    var zoom = function (f) {
      cy.zoom({ level: cy.zoom() * f, renderedPosition: { x: el.clientWidth / 2, y: el.clientHeight / 2 } });
    };
    if (byId('graph-zoom-in')) { byId('graph-zoom-in').addEventListener('click', function () { zoom(1.25); }); }
    if (byId('graph-zoom-out')) { byId('graph-zoom-out').addEventListener('click', function () { zoom(0.8); }); }
    if (byId('graph-fit')) {
      byId('graph-fit').addEventListener('click', function () { cy.fit(cy.elements().not('.filtered'), 30); });
    }
    var apply = function () { applyFilters(cy); };
    ['graph-min-amount', 'graph-from', 'graph-until', 'graph-labels'].forEach(function (id) {
      var input = byId(id);
      if (input) { input.addEventListener('input', apply); input.addEventListener('change', apply); }
    });
    applyFilters(cy);
  }

  // Recounts each pair for the chosen time range, hides pairs under the amount floor and
  // accounts left without a visible pair (never the subject).
  function applyFilters(cy) {
    var byId = function (id) { return document.getElementById(id); };
    var span = timeSpan(cy);
    var at = function (id, dflt) {
      var input = byId(id);
      var v = input ? Number(input.value) : dflt;
      return span[0] + (span[1] - span[0]) * v / 1000;
    };
    var from = at('graph-from', 0), until = at('graph-until', 1000);
    if (from > until) { var swap = from; from = until; until = swap; }
    var floor = byId('graph-min-amount') ? Number(byId('graph-min-amount').value) || 0 : 0;
    var labelled = byId('graph-labels') ? byId('graph-labels').checked : true;
    var whole = from <= span[0] && until >= span[1];
    cy.batch(function () {
      cy.edges().forEach(function (e) {
        var times = e.data('times') || [], amounts = e.data('amounts') || [];
        var n = 0, total = 0;
        for (var i = 0; i < times.length; i++) {
          if (times[i] >= from && times[i] <= until) { n += 1; total += amounts[i]; }
        }
        // A link of several currencies has no single total: only its count is recounted,
        // and the amount floor does not apply to it.
        var mixed = String(e.data('currency')).indexOf('+') >= 0;
        var hide = n === 0 || (!mixed && total < floor);
        e.toggleClass('filtered', hide);
        e.toggleClass('labelled', labelled && !hide);
        e.data('label', whole ? e.data('full')
          : mixed ? n + ' × (' + e.data('currency') + ')'
            : n + ' × ' + money(total, e.data('exponent')) + ' ' + e.data('currency'));
      });
      cy.nodes().forEach(function (n) {
        var visible = n.data('subject') === 1 || n.connectedEdges().some(function (e) { return !e.hasClass('filtered'); });
        n.toggleClass('filtered', !visible);
      });
    });
    var out = byId('graph-range');
    if (out && span[1] > 0) {
      // In the user's time zone, as the server writes every other time of the page.
      var tz = document.getElementById('graph').dataset.tz || 'UTC';
      var fmt;
      try {
        fmt = new Intl.DateTimeFormat('sv-SE', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' });
      } catch (e) {
        fmt = new Intl.DateTimeFormat('sv-SE', { timeZone: 'UTC', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' });
        tz = 'UTC';
      }
      out.textContent = fmt.format(new Date(from)) + ' – ' + fmt.format(new Date(until)) + ' ' + tz;
    }
  }

  // Shows the selected account under the graph, with a link to it and an expand button.
  function select(cy, node) {
    var box = document.getElementById('graph-selection');
    if (!box) {
      box = document.createElement('p');
      box.id = 'graph-selection';
      box.className = 'help';
      document.getElementById('graph').insertAdjacentElement('afterend', box);
    }
    box.textContent = '';
    var name = document.createElement('b');
    name.textContent = node.data('title');
    var link = document.createElement('a');
    link.href = accountHref(node.id());
    link.id = 'graph-open';
    link.textContent = '→';
    var more = document.createElement('button');
    more.type = 'button';
    more.id = 'graph-expand';
    more.textContent = '+';
    more.title = 'expand';
    more.addEventListener('click', function () { expand(cy, node); });
    box.append(name, ' ', link, ' ', more);
  }

  // Adds the account's other counterparties, laid out around it as the server lays them
  // out, shifted so that no new node lands on an existing one.
  function expand(cy, node) {
    fetch('/flows?id=' + encodeURIComponent(node.id()), { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); })
      .then(function (g) {
        var centre = (g.nodes || []).filter(function (n) { return n.id === node.id(); })[0];
        if (!centre) { return; }
        var p = node.position();
        var dx = p.x - centre.x, dy = p.y - centre.y;
        var taken = cy.nodes().map(function (n) { return n.position(); });
        var free = function (x, y) {
          return !taken.some(function (q) { return Math.abs(q.x - x) < RANK_GAP / 2 && Math.abs(q.y - y) < ROW_GAP; });
        };
        var added = [];
        (g.nodes || []).forEach(function (n) {
          if (cy.getElementById(n.id).nonempty()) { return; }
          var el = nodeElement(n, dx, dy);
          while (!free(el.position.x, el.position.y)) { el.position.y += ROW_GAP; }
          taken.push(el.position);
          el.data.subject = 0;
          added.push(el);
        });
        (g.links || []).forEach(function (l) {
          if (cy.getElementById(l.id).empty()) { added.push(edgeElement(l)); }
        });
        cy.add(added);
        applyFilters(cy);
        document.getElementById('graph').setAttribute('data-drawn', String(cy.nodes().length));
      })
      .catch(function (e) { showError('The account could not be expanded (' + e.message + ').'); });
  }

  // The link to an account's page, as the server writes it (views::account_href): a dot
  // segment id goes by query, since browsers resolve `..` even percent-encoded.
  function accountHref(id) {
    var enc = encodeURIComponent(id).replace(/[.!'()*]/g, function (c) {
      return '%' + c.charCodeAt(0).toString(16).toUpperCase();
    });
    return (id === '.' || id === '..') ? '/account?id=' + enc : '/accounts/' + enc;
  }

  function showError(text) {
    var el = document.getElementById('htmx-error');
    if (!el) { return; }
    el.textContent = text;
    el.hidden = !text;
  }

  function init() {
    drawGraph();
    var body = document.body;
    body.addEventListener('htmx:afterRequest', function (e) {
      var elt = e.detail && e.detail.elt;
      if (e.detail && e.detail.successful) {
        showError('');
        if (elt && elt.tagName === 'FORM' && elt.hasAttribute('data-reset-after-swap')) { elt.reset(); }
      }
    });
    body.addEventListener('htmx:responseError', function (e) {
      var xhr = e.detail && e.detail.xhr;
      var msg = 'The request was refused (' + (xhr ? xhr.status : '?') + ')';
      if (xhr && xhr.responseText) {
        var doc = new DOMParser().parseFromString(xhr.responseText, 'text/html');
        var m = doc.getElementById('error-message');
        if (m && m.textContent) { msg = m.textContent; }
      }
      showError(msg);
    });
    body.addEventListener('htmx:sendError', function () { showError('The server did not answer.'); });
  }
  if (document.readyState === 'loading') { document.addEventListener('DOMContentLoaded', init); } else { init(); }
})();
