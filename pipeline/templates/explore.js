/* mobilize explorer: displays the numbers pipeline/explore.py computed. Document text and
   metadata are inserted with textContent only (never innerHTML); charts are ECharts on a
   canvas with rich-text tooltips (no HTML from data). */
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("explore-data").textContent);
  var $ = function (id) { return document.getElementById(id); };
  var PALETTE = ["#f4a261", "#e9c46a", "#8ecae6", "#b5e48c", "#ffafcc", "#cdb4db", "#90be6d",
    "#f9c74f", "#a2d2ff", "#ffc8dd", "#bde0fe", "#d4a373", "#c8b6ff", "#99d98c", "#ffd6a5"];
  var SCOPE_NAMES = {"all": "whole text", "domain_window": "social-security passages (domain_window)"};
  var KWIC_WIDTH = 20, KWIC_MAX = 200;
  var FONT = 'system-ui, "mobilize-cjk", sans-serif';
  var state = {kind: "category", subject: 0, scope: "all", grouping: D.groupings[0] || null,
    group: null, doc: null};
  var charts = {};

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function fmt(x, d) {
    if (x === null || x === undefined) return "–";
    return Number(x).toFixed(d === undefined ? 2 : d);
  }
  function option(select, value, label) {
    var o = el("option", label); o.value = String(value); select.appendChild(o); return o;
  }
  function catColor(ci) { return PALETTE[ci % PALETTE.length]; }
  function chart(id) {
    if (!charts[id]) {
      charts[id] = echarts.init($(id), null, {renderer: "canvas"});
      charts[id].setOption({textStyle: {fontFamily: FONT}});
      window.addEventListener("resize", function () { charts[id].resize(); });
    }
    return charts[id];
  }
  function subjectName() {
    if (state.kind === "category") return D.categories[state.subject].label;
    var t = D.terms[state.subject];
    return t[1] + " (" + (t[0] >= 0 ? D.categories[t[0]].id : "?") + ")";
  }

  // ------------------------------------------------------------------ header and controls
  $("about").textContent = "Corpus " + D.corpus + " · " + D.documents.length + " documents · lexicon " +
    D.lexicon + " · intervals: 95% percentile bootstrap, " + D.n_boot + " replicates, seed " + D.seed + ".";
  D.categories.forEach(function (c, i) { option($("category"), i, c.label + " (" + c.dimension + ")"); });
  var termOrder = D.terms.map(function (t, i) { return i; }).sort(function (a, b) {
    var ta = D.terms[a], tb = D.terms[b];
    return (ta[0] - tb[0]) || (ta[1] < tb[1] ? -1 : ta[1] > tb[1] ? 1 : 0);
  });
  var lastCat = null, group = null;
  termOrder.forEach(function (i) {
    var t = D.terms[i];
    if (t[0] !== lastCat) {
      group = el("optgroup"); group.label = t[0] >= 0 ? D.categories[t[0]].label : "?";
      $("term").appendChild(group); lastCat = t[0];
    }
    option(group, i, t[1]);
  });
  Object.keys(D.rates.category).forEach(function (s) { option($("scope"), s, SCOPE_NAMES[s] || s); });
  D.groupings.forEach(function (g) { option($("grouping"), g, g); });
  option($("grouping"), "overall", "none (the whole corpus)");
  if (state.grouping === null) state.grouping = "overall";

  $("kind").addEventListener("change", function () {
    state.kind = $("kind").value;
    $("category-label").hidden = state.kind !== "category";
    $("term-label").hidden = state.kind !== "term";
    state.subject = Number(state.kind === "category" ? $("category").value : $("term").value);
    showRates();
  });
  $("category").addEventListener("change", function () { state.subject = Number($("category").value); showRates(); });
  $("term").addEventListener("change", function () { state.subject = Number($("term").value); showRates(); });
  $("scope").addEventListener("change", function () { state.scope = $("scope").value; showRates(); });
  $("grouping").addEventListener("change", function () { state.grouping = $("grouping").value; showRates(); });
  $("only-ss").addEventListener("change", function () { if (state.doc !== null) showDoc(state.doc); });
  $("only-hits").addEventListener("change", function () { if (state.doc !== null) showDoc(state.doc); });

  // ------------------------------------------------------------------ 1. rates
  function rateRows() {
    var rows = ((D.rates[state.kind] || {})[state.scope] || {})[state.grouping] || [];
    return rows.filter(function (r) { return r[0] === state.subject; });
  }
  function groupLabel(g) {
    return state.grouping === "overall" ? "all documents" : D.groups[state.grouping].values[g];
  }
  function showRates() {
    var rows = rateRows();
    var basis = D.basis[state.kind][state.scope];
    $("rates-note").textContent = subjectName() + " · " + (SCOPE_NAMES[state.scope] || state.scope) +
      " · by " + state.grouping + ". Rate = count / tokens × 10,000 pooled over the group's documents; " +
      "interval resamples " + basis + "." + (state.scope !== "all" ? " Tokens are those of the passages." : "") +
      (state.kind === "term" ? " Groups where the term never occurs and that have no tokens are left out." : "");
    // the category's held-out recall per era from the measurement card (as the report's trends)
    var cat = state.kind === "category" ? D.categories[state.subject] : null;
    var era = cat ? (D.era_recall || {})[cat.id] : "";
    $("rates-era").textContent = era || ""; $("rates-era").hidden = !era;
    var tb = $("rates-table").tBodies[0]; clear(tb);
    rows.forEach(function (r) {
      var tr = el("tr"); tr.dataset.group = String(r[1]);
      var td = el("td"), b = el("button", groupLabel(r[1]), "link");
      b.type = "button"; b.className = "link group-button"; b.dataset.group = String(r[1]);
      b.addEventListener("click", function () { showGroup(r[1]); });
      td.appendChild(b); tr.appendChild(td);
      tr.appendChild(el("td", r[2], "n"));
      tr.appendChild(el("td", r[3], "count"));
      tr.appendChild(el("td", r[4], "tokens"));
      tr.appendChild(el("td", fmt(r[5]), "rate"));
      tr.appendChild(el("td", "[" + fmt(r[6]) + ", " + fmt(r[7]) + "]", "ci"));
      tb.appendChild(tr);
    });
    var labels = rows.map(function (r) { return groupLabel(r[1]); });
    var lo = rows.map(function (r) { return r[6]; });
    var span = rows.map(function (r) { return r[6] === null || r[7] === null ? null : r[7] - r[6]; });
    var line = state.grouping === "year";
    var c = chart("rates-chart");
    c.clear();
    c.setOption({
      animation: false, textStyle: {fontFamily: FONT},
      tooltip: {trigger: "axis", renderMode: "richText",
        formatter: function (ps) {
          var r = rows[ps[0].dataIndex];
          return groupLabel(r[1]) + "\nrate " + fmt(r[5]) + " [" + fmt(r[6]) + ", " + fmt(r[7]) + "]\ncount " + r[3] + ", n = " + r[2] + " documents";
        }},
      grid: {left: 60, right: 20, top: 20, bottom: line ? 40 : 90},
      xAxis: {type: "category", data: labels, axisLabel: {rotate: line ? 0 : 30, width: 160, overflow: "truncate"}},
      yAxis: {type: "value", name: "per 10k tokens"},
      series: [
        {type: "line", data: lo, stack: "ci", symbol: "none", lineStyle: {opacity: 0}, silent: true},
        {type: "line", data: span, stack: "ci", symbol: "none", lineStyle: {opacity: 0},
          areaStyle: {color: "#9ecae1", opacity: 0.5}, silent: true},
        {type: line ? "line" : "bar", data: rows.map(function (r) { return r[5]; }),
          itemStyle: {color: "#2b6cb0"}, symbolSize: 6, barMaxWidth: 40}
      ]
    });
    c.off("click");
    c.on("click", function (p) { if (p.seriesIndex === 2) showGroup(rows[p.dataIndex][1]); });
  }

  // ------------------------------------------------------------------ 2. documents of a group
  function docCount(d) {
    if (state.kind === "category") return (d.cat[state.scope] || [])[state.subject] || 0;
    var v = d.terms[String(state.subject)];
    return v ? v[state.scope === "all" ? 0 : 1] : 0;
  }
  function docTokens(d) { return state.scope === "all" ? d.tokens : d.tokens_ss; }
  function groupDocs(g) {
    if (state.grouping === "overall") return D.documents.map(function (d, i) { return i; });
    return D.groups[state.grouping].docs[g];
  }
  function showGroup(g) {
    state.group = g;
    Array.prototype.forEach.call($("rates-table").tBodies[0].rows, function (tr) {
      tr.classList.toggle("current", tr.dataset.group === String(g));
    });
    var idx = groupDocs(g).slice().sort(function (a, b) {
      var da = D.documents[a], db = D.documents[b];
      return (docCount(db) - docCount(da)) || (da.meta.year < db.meta.year ? -1 : da.meta.year > db.meta.year ? 1 : 0) ||
        (da.id < db.id ? -1 : 1);
    });
    var total = 0;
    var tb = $("docs-table").tBodies[0]; clear(tb);
    idx.forEach(function (i) {
      var d = D.documents[i], n = docCount(d); total += n;
      var tr = el("tr"); tr.dataset.doc = String(i);
      tr.appendChild(el("td", d.meta.year || ""));
      var td = el("td", null, "title"), b = el("button", d.title || d.id, "link doc-button");
      b.type = "button"; b.dataset.doc = String(i);
      b.addEventListener("click", function () { showDoc(i); });
      td.appendChild(b); td.appendChild(el("span", " " + d.id, "note")); tr.appendChild(td);
      tr.appendChild(el("td", n, "count")); tr.appendChild(el("td", docTokens(d), "tokens"));
      tb.appendChild(tr);
    });
    $("docs-table").hidden = false;
    $("docs-note").textContent = groupLabel(g) + ": " + idx.length + " documents, " + total + " hits of " +
      subjectName() + " (" + (SCOPE_NAMES[state.scope] || state.scope) + "), most first.";
    $("docs-note").dataset.total = String(total);
  }

  // ------------------------------------------------------------------ 3. passages
  function legend() {
    var box = $("legend"); clear(box);
    D.categories.forEach(function (c, i) {
      var s = el("span", c.label, "sw"); s.style.backgroundColor = catColor(i); box.appendChild(s);
    });
    box.appendChild(el("span", "not counted: dotted underline = absorbed by a longer match of its category · struck through = a sense guard excludes this use · grey wavy underline = a word its category lists as excluded (e.g. too general) · blue background: social-security passage", "note"));
  }
  function isSelected(ci, ti) {
    return state.kind === "category" ? ci === state.subject : ti === state.subject;
  }
  function paragraphs(d) {
    // [offset, text] of each paragraph of the kept pieces
    var out = [];
    d.text.forEach(function (piece) {
      var off = piece[0], parts = piece[1].split("\n");
      parts.forEach(function (p) { if (p.length) out.push([off, p]); off += p.length + 1; });
    });
    return out;
  }
  function spansOf(d) {
    var s = [], i;
    for (i = 0; i < d.hits.length; i += 4) s.push({start: d.hits[i], end: d.hits[i] + d.hits[i + 1], cat: d.hits[i + 2], term: d.hits[i + 3], kind: -1});
    for (i = 0; i < d.marks.length; i += 5) s.push({start: d.marks[i], end: d.marks[i] + d.marks[i + 1], cat: d.marks[i + 2], term: d.marks[i + 3], kind: d.marks[i + 4]});
    return s;
  }
  function windows(d) {
    var w = [];
    for (var i = 0; i < d.window.length; i += 2) w.push([d.window[i], d.window[i] + d.window[i + 1]]);
    return w;
  }
  function describe(sp) {
    var t = D.terms[sp.term], c = sp.cat >= 0 ? D.categories[sp.cat].id : "?";
    return c + " " + t[1] + (sp.kind < 0 ? " (counted)" : " — " + D.kinds[sp.kind]);
  }
  function showDoc(i) {
    state.doc = i;
    var d = D.documents[i];
    Array.prototype.forEach.call($("docs-table").tBodies[0].rows, function (tr) {
      tr.classList.toggle("current", tr.dataset.doc === String(i));
    });
    legend();
    var spans = spansOf(d), wins = windows(d);
    var onlySS = $("only-ss").checked, onlyHits = $("only-hits").checked;
    var box = $("passage-text"); clear(box);
    var shownSel = 0;
    // spans and windows sorted by start, walked once with the paragraphs (in text order)
    spans.sort(function (x, y) { return x.start - y.start; });
    var si = 0, wi = 0;
    var frag = document.createDocumentFragment();
    paragraphs(d).forEach(function (para) {
      var a = para[0], text = para[1], b = a + text.length;
      while (si < spans.length && spans[si].end <= a) si++;
      while (wi < wins.length && wins[wi][1] <= a) wi++;
      var mine = [], myWins = [], k;
      for (k = si; k < spans.length && spans[k].start < b; k++) if (spans[k].end > a) mine.push(spans[k]);
      for (k = wi; k < wins.length && wins[k][0] < b; k++) if (wins[k][1] > a) myWins.push(wins[k]);
      if (onlySS && !myWins.length) return;
      if (onlyHits && !mine.some(function (s) { return s.kind < 0 && isSelected(s.cat, s.term); })) return;
      var cuts = [a, b];
      mine.forEach(function (s) { cuts.push(Math.max(a, s.start), Math.min(b, s.end)); });
      myWins.forEach(function (w) { cuts.push(Math.max(a, w[0]), Math.min(b, w[1])); });
      cuts.sort(function (x, y) { return x - y; });
      cuts = cuts.filter(function (x, k, arr) { return k === 0 || arr[k - 1] !== x; });
      var p = el("p"); p.dataset.offset = String(a);
      for (var k = 0; k + 1 < cuts.length; k++) {
        var s0 = cuts[k], s1 = cuts[k + 1], piece = text.slice(s0 - a, s1 - a);
        var cover = mine.filter(function (s) { return s.start <= s0 && s.end >= s1; });
        var inWin = myWins.some(function (w) { return w[0] <= s0 && w[1] >= s1; });
        if (!cover.length && !inWin) { p.appendChild(document.createTextNode(piece)); continue; }
        var span = el("span", piece);
        if (inWin) span.classList.add("ss");
        var counted = cover.filter(function (s) { return s.kind < 0; });
        if (counted.length) {
          span.classList.add("hit");
          span.style.backgroundColor = catColor(counted[0].cat);
          if (counted.length > 1) span.classList.add("multi");
          if (counted.some(function (s) { return isSelected(s.cat, s.term); })) span.classList.add("sel");
        } else if (cover.length) {
          span.classList.add("mk", "k" + cover[0].kind);
        }
        if (cover.length) span.title = cover.map(describe).join("\n");
        p.appendChild(span);
      }
      frag.appendChild(p);
    });
    box.appendChild(frag);
    spans.forEach(function (s) { if (s.kind < 0 && isSelected(s.cat, s.term)) shownSel++; });
    var n = docCount(d);
    var sum = $("passage-summary"); clear(sum);
    sum.appendChild(el("h3", (d.meta.year ? d.meta.year + " · " : "") + (d.title || d.id)));
    var meta = D.groupings.map(function (g) { return g + ": " + (d.meta[g] || "–"); }).join(" · ");
    sum.appendChild(el("p", d.id + " · " + meta + " · " + d.tokens + " tokens (" + d.tokens_ss + " in social-security passages)", "note"));
    var line = el("p", subjectName() + ": " + n + " counted in the " + (SCOPE_NAMES[state.scope] || state.scope) +
      " (the run's tables); " + shownSel + " highlighted with a black outline in the whole text; " +
      (d.hits.length / 4) + " hits of all categories, " + (d.marks.length / 5) + " occurrences not counted.");
    line.id = "passage-count"; line.dataset.count = String(n); line.dataset.highlighted = String(shownSel);
    sum.appendChild(line);
    if (!D.text_whole) sum.appendChild(el("p", "This corpus is above the explorer's text budget: only the paragraphs holding a match, and their neighbours, are kept.", "note"));
    if (!d.text.length) sum.appendChild(el("p", "The document's text was not available when the explorer was written (its corpus folder was missing).", "note"));
    $("passages-note").textContent = "";
    $("passages").scrollIntoView({block: "start"});
  }

  // ------------------------------------------------------------------ KWIC helpers
  function pieceAt(d, pos) {
    for (var i = 0; i < d.text.length; i++) {
      var p = d.text[i];
      if (pos >= p[0] && pos <= p[0] + p[1].length) return p;
    }
    return null;
  }
  function kwicLine(box, di, start, end) {
    var d = D.documents[di], p = pieceAt(d, start);
    if (!p) return;
    var s = start - p[0], e = end - p[0];
    var row = el("div");
    var src = el("button", (d.meta.year || "") + " " + d.id, "link src"); src.type = "button";
    src.addEventListener("click", function () { showDoc(di); });
    row.appendChild(src);
    row.appendChild(document.createTextNode("  " + p[1].slice(Math.max(0, s - KWIC_WIDTH), s).replace(/\n/g, " ")));
    row.appendChild(el("b", p[1].slice(s, e)));
    row.appendChild(document.createTextNode(p[1].slice(e, e + KWIC_WIDTH).replace(/\n/g, " ")));
    box.appendChild(row);
  }

  // ------------------------------------------------------------------ 4. search
  function countIn(text, needle, found) {
    var n = 0, at = text.indexOf(needle);
    while (at !== -1) { n++; if (found) found.push(at); at = text.indexOf(needle, at + needle.length); }
    return n;
  }
  $("search-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var q = $("search-input").value;
    var tb = $("search-table").tBodies[0]; clear(tb);
    var box = $("search-kwic"); clear(box);
    if (!q) { $("search-note").textContent = "Type a string first."; return; }
    var byYear = {}, total = 0, lines = 0;
    D.documents.forEach(function (d, di) {
      var y = d.meta.year || "(no year)", n = 0;
      d.text.forEach(function (p) {
        var found = [];
        n += countIn(p[1], q, found);
        found.forEach(function (at) {
          if (lines < KWIC_MAX) { kwicLine(box, di, p[0] + at, p[0] + at + q.length); lines++; }
        });
      });
      if (!byYear[y]) byYear[y] = [0, 0, 0];
      byYear[y][0] += n; byYear[y][1] += n > 0 ? 1 : 0; byYear[y][2] += 1; total += n;
    });
    var years = Object.keys(byYear).sort();
    years.forEach(function (y) {
      var tr = el("tr"); tr.dataset.year = y;
      tr.appendChild(el("td", y)); tr.appendChild(el("td", byYear[y][0], "count"));
      tr.appendChild(el("td", byYear[y][1])); tr.appendChild(el("td", byYear[y][2]));
      tb.appendChild(tr);
    });
    $("search-table").hidden = false;
    $("search-note").textContent = "“" + q + "”: " + total + " occurrences in " + D.documents.length +
      " documents (non-overlapping, left to right, as Python's str.count on the normalised text)" +
      (D.text_whole ? "" : "; only the kept passages are searched (the corpus is above the text budget)") +
      (total > KWIC_MAX ? "; the first " + KWIC_MAX + " in context below." : ".");
    $("search-note").dataset.total = String(total);
    var c = chart("search-chart"); c.clear();
    c.setOption({animation: false, textStyle: {fontFamily: FONT}, grid: {left: 50, right: 10, top: 10, bottom: 30},
      tooltip: {trigger: "axis", renderMode: "richText"},
      xAxis: {type: "category", data: years}, yAxis: {type: "value", minInterval: 1},
      series: [{type: "bar", data: years.map(function (y) { return byYear[y][0]; }), itemStyle: {color: "#2b6cb0"}}]});
  });

  // ------------------------------------------------------------------ 5. two groups
  var kGroupings = Object.keys(D.keyness);
  kGroupings.forEach(function (g) { option($("k-grouping"), g, g); });
  function fillPair(draw) {
    var g = $("k-grouping").value; if (!g) return;
    var vals = D.groups[g].values;
    clear($("k-a")); clear($("k-b"));
    vals.forEach(function (v, i) { option($("k-a"), i, v); option($("k-b"), i, v); });
    $("k-a").value = String(vals.length - 1); $("k-b").value = String(Math.max(0, vals.length - 2));
    if (draw !== false) showPair();
  }
  var kDrawn = false;  // (set by any drawing of the pair, so the deferred first draw never redraws)
  function showPair() {
    kDrawn = true;
    var g = $("k-grouping").value, K = D.keyness[g];
    var a = Number($("k-a").value), b = Number($("k-b").value);
    var ca = $("k-top-a"), cb = $("k-top-b"); clear(ca); clear(cb); clear($("k-kwic"));
    var c = chart("k-chart"); c.clear();
    var vals = D.groups[g].values;
    $("k-top-a-h").textContent = "Typical of A (" + vals[a] + ")";
    $("k-top-b-h").textContent = "Typical of B (" + vals[b] + ")";
    if (a === b) { $("k-note").textContent = "Pick two different groups."; return; }
    var lo = Math.min(a, b), hi = Math.max(a, b), pair = K.pairs[lo + "|" + hi];
    if (!pair) { $("k-note").textContent = "This pair was not precomputed (more than " + "1000 pairs: only values at most 10 apart); pick closer values."; return; }
    var sign = a < b ? 1 : -1;  // z(B, A) = -z(A, B) exactly
    var pts = pair[0].map(function (t, k) {
      var na = K.counts[a][t], nb = K.counts[b][t];
      return {t: t, z: pair[1][k] === null ? null : sign * pair[1][k], na: na, nb: nb};
    }).filter(function (p) { return p.z !== null; });
    $("k-note").textContent = "A = " + vals[a] + " (" + K.tokens[a] + " tokens, " + D.groups[g].docs[a].length +
      " documents), B = " + vals[b] + " (" + K.tokens[b] + " tokens, " + D.groups[g].docs[b].length +
      " documents). y: log-odds z with an informative Dirichlet prior (Monroe, Colaresi & Quinn 2008; prior " +
      D.prior_share + " × the smaller group's tokens, as report.html's keyness); x: count in A + B (log scale). " +
      "Positive z: typical of A. Click a term for its lines in both groups.";
    var sorted = pts.slice().sort(function (p, q) { return (q.z - p.z) || (D.term_texts[p.t] < D.term_texts[q.t] ? -1 : 1); });
    function item(list, p) {
      var li = el("li"), bt = el("button", D.term_texts[p.t], "link term-button"); bt.type = "button";
      bt.dataset.term = D.term_texts[p.t];
      bt.addEventListener("click", function () { termKwic(g, a, b, p.t); });
      li.appendChild(bt); li.appendChild(el("span", "  z " + fmt(p.z) + " · A " + p.na + " · B " + p.nb, "note"));
      list.appendChild(li);
    }
    sorted.filter(function (p) { return p.z > 0; }).slice(0, 15).forEach(function (p) { item(ca, p); });
    sorted.filter(function (p) { return p.z < 0; }).reverse().slice(0, 15).forEach(function (p) { item(cb, p); });
    c.setOption({animation: false, textStyle: {fontFamily: FONT}, grid: {left: 60, right: 20, top: 20, bottom: 50},
      tooltip: {renderMode: "richText", formatter: function (p) { var q = p.data[2]; return D.term_texts[q.t] + "\nz " + fmt(q.z) + "\nA " + q.na + " · B " + q.nb; }},
      xAxis: {type: "log", name: "count in A + B", nameLocation: "middle", nameGap: 28},
      yAxis: {type: "value", name: "z (A vs B)"},
      series: [{type: "scatter", symbolSize: 7, data: pts.map(function (p) { return [p.na + p.nb, p.z, p]; }),
        itemStyle: {color: function (p) { return p.data[1] > 1.96 ? "#c0392b" : p.data[1] < -1.96 ? "#2b6cb0" : "#999"; }},
        label: {show: true, position: "right", fontSize: 11, formatter: function (p) { return Math.abs(p.data[1]) >= 3 ? D.term_texts[p.data[2].t] : ""; }}}]});
    c.off("click");
    c.on("click", function (p) { termKwic(g, a, b, p.data[2].t); });
  }
  function termKwic(g, a, b, t) {
    var text = D.term_texts[t], box = $("k-kwic"); clear(box);
    [[a, "A"], [b, "B"]].forEach(function (side) {
      var shown = 0, n = 0, div = el("div");
      var h = el("h3"); box.appendChild(h);
      D.groups[g].docs[side[0]].forEach(function (di) {
        var d = D.documents[di], seen = {};
        for (var i = 0; i < d.hits.length; i += 4) {
          if (D.terms[d.hits[i + 3]][1] !== text || seen[d.hits[i]]) continue;
          seen[d.hits[i]] = 1; n++;
          if (shown < 30) { kwicLine(div, di, d.hits[i], d.hits[i] + d.hits[i + 1]); shown++; }
        }
      });
      h.textContent = side[1] + " (" + D.groups[g].values[side[0]] + "): " + text + ", " + n + " counted" + (n > shown ? ", the first " + shown + " shown" : "");
      h.dataset.count = String(n);
      box.appendChild(div);
    });
  }
  $("k-grouping").addEventListener("change", function () { fillPair(); });
  $("k-a").addEventListener("change", showPair);
  $("k-b").addEventListener("change", showPair);

  function start() {
    // the category with the most hits over the whole text, to begin with
    var overall = (D.rates.category.all || {}).overall || [];
    var best = overall.filter(function (r) { return D.categories[r[0]].dimension !== "domain"; })
      .sort(function (a, b) { return b[3] - a[3] || a[0] - b[0]; })[0];
    if (best) { state.subject = best[0]; $("category").value = String(best[0]); }
    $("grouping").value = state.grouping;
    showRates();
    if (kGroupings.length) {
      $("k-grouping").value = kGroupings.indexOf("period") >= 0 ? "period" : kGroupings[0];
      // (drawn when the section first comes into view or gets the focus: a faster first render)
      fillPair(false);
      // (a researcher who already picked a pair, or a term's lines, keeps them: a later first
      // sight of the section must not redraw and clear them)
      var drawOnce = function () { if (!kDrawn) { showPair(); } };
      $("twogroups").addEventListener("focusin", drawOnce);
      if (window.IntersectionObserver) {
        new IntersectionObserver(function (es, obs) {
          if (es.some(function (e) { return e.isIntersecting; })) { obs.disconnect(); drawOnce(); }
        }).observe($("twogroups"));
      } else {
        drawOnce();
      }
    } else {
      $("k-note").textContent = "No grouping has two values: nothing to compare.";
    }
    window.__explorerReadyAt = performance.now();
    window.__explorerReady = true;
  }
  // (charts draw on a canvas: the embedded CJK font must be loaded before they draw)
  if (document.fonts && document.fonts.load) {
    document.fonts.load('12px "mobilize-cjk"', "中").then(start, start);
  } else {
    start();
  }
})();
