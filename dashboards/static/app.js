// clearwatch dashboard: draws the fund-flow graph from the data attribute the server
// rendered, and small htmx helpers (reset a form after its swap, show a refused request).
// Times are rendered by the server in the user's time zone. No inline script anywhere;
// every page works without this file (htmx enhances plain forms and links).
(function () {
  'use strict';

  var ROLE_COLOURS = {
    merchant: '#edae49', acquirer: '#00798c', bank: '#2e4057', agent: '#8e44ad',
    individual: '#66a182', unknown: '#8d96a7'
  };

  function drawGraph() {
    var el = document.getElementById('graph');
    if (!el || typeof window.cytoscape !== 'function') { return; }
    var data;
    try { data = JSON.parse(el.dataset.graph || '{}'); } catch (e) { return; }
    if (window.cytoscapeDagre) { window.cytoscape.use(window.cytoscapeDagre); }
    var elements = [];
    (data.nodes || []).forEach(function (n) {
      elements.push({ data: { id: n.id, label: n.label, role: n.role, licensed: n.licensed ? 1 : 0, subject: n.subject ? 1 : 0,
        colour: ROLE_COLOURS[n.role] || '#8d96a7' } });
    });
    (data.edges || []).forEach(function (e) {
      elements.push({ data: { id: e.id, source: e.source, target: e.target, label: e.label } });
    });
    var cy = window.cytoscape({
      container: el,
      elements: elements,
      wheelSensitivity: 0.3,
      style: [
        { selector: 'node', style: { 'background-color': 'data(colour)', 'label': 'data(label)', 'font-size': 9,
          'text-valign': 'bottom', 'text-margin-y': 3, 'width': 18, 'height': 18 } },
        { selector: 'node[licensed = 1]', style: { 'border-width': 4, 'border-color': '#003b46', 'shape': 'round-rectangle' } },
        { selector: 'node[subject = 1]', style: { 'width': 32, 'height': 32, 'font-weight': 'bold', 'background-color': '#d1495b' } },
        { selector: 'edge', style: { 'width': 1.5, 'line-color': '#9aa3b2', 'target-arrow-color': '#9aa3b2',
          'target-arrow-shape': 'triangle', 'curve-style': 'bezier', 'label': 'data(label)', 'font-size': 7,
          'text-rotation': 'autorotate', 'color': '#38404d' } }
      ],
      layout: window.cytoscapeDagre ? { name: 'dagre', rankDir: 'TB', nodeSep: 28, rankSep: 140 } : { name: 'cose' }
    });
    cy.on('tap', 'node', function (evt) {
      window.location.href = accountHref(evt.target.id());
    });
    el.setAttribute('data-drawn', String(cy.nodes().length));
    window.clearwatchGraph = cy;
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
