// clearwatch dashboard: shows times in the browser's time zone and draws the fund-flow
// graph from the data attribute the server rendered. No inline script anywhere.
(function () {
  'use strict';

  function localTimes(root) {
    var fmt;
    try {
      fmt = new Intl.DateTimeFormat(document.documentElement.lang || undefined, {
        year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit',
        timeZoneName: 'short'
      });
    } catch (e) { return; }
    root.querySelectorAll('time[datetime]').forEach(function (el) {
      var d = new Date(el.getAttribute('datetime'));
      if (!isNaN(d)) { el.title = el.getAttribute('datetime'); el.textContent = fmt.format(d); }
    });
  }

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
      window.location.href = '/accounts/' + encodeURIComponent(evt.target.id());
    });
    el.setAttribute('data-drawn', String(cy.nodes().length));
    window.clearwatchGraph = cy;
  }

  function init() {
    localTimes(document);
    drawGraph();
    document.body.addEventListener('htmx:afterSwap', function (e) { localTimes(e.target); });
  }
  if (document.readyState === 'loading') { document.addEventListener('DOMContentLoaded', init); } else { init(); }
})();
