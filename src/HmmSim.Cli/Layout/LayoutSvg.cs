using System.Text;
using HmmSim.Cli.Report;

namespace HmmSim.Cli.Layout;

/// <summary>Draws the address spaces of one or more machines as a self-contained SVG: per design, the
/// physical address space as a horizontal bar and, in the redesign, the device-private address space
/// below it. Segment widths grow with log2(size), so 256 MiB and an 8 TiB window are both visible;
/// the BARs inside a PCI window are drawn inside its box on the same scale (what already takes the
/// window's room). Boundaries are labelled in hex and in binary units on one row, thinned where they
/// crowd (every boundary keeps its tick; each box's tooltip has the exact range).</summary>
internal static class LayoutSvg
{
    private const double Width = 1000, Left = 40, BarWidth = 920, BarHeight = 46;
    private const double PanelHeight = 340, Header = 74;
    private const int DmesgLines = 3;

    public static string Render(IReadOnlyList<MachineLayout> layouts, bool xmlDeclaration = true)
    {
        ArgumentNullException.ThrowIfNull(layouts);
        double height = Header + layouts.Count * PanelHeight;
        var sb = new StringBuilder();
        if (xmlDeclaration)
            sb.Append("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        sb.Append($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{XmlText.N(Width)}\" height=\"{XmlText.N(height)}\" viewBox=\"0 0 {XmlText.N(Width)} {XmlText.N(height)}\" font-family=\"sans-serif\" font-size=\"12\" role=\"img\">\n");
        var first = layouts.Count > 0 ? layouts[0].Config : new MachineConfig();
        string machine = Describe(first);
        sb.Append($"  <title>{XmlText.Escape("Address spaces: " + machine)}</title>\n");
        sb.Append("  <desc>Physical address space per design (top-level /proc/iomem resources, the BARs inside PCI windows, free gaps) and, in the redesign, the separate device-private address space. Widths grow with log2(size): not to scale.</desc>\n");
        sb.Append($"  <rect x=\"0\" y=\"0\" width=\"{XmlText.N(Width)}\" height=\"{XmlText.N(height)}\" fill=\"#ffffff\"/>\n");
        sb.Append($"  <text x=\"{XmlText.N(Width / 2)}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">{XmlText.Escape(machine)}</text>\n");
        sb.Append($"  <text x=\"{XmlText.N(Width / 2)}\" y=\"38\" text-anchor=\"middle\" font-size=\"11\" fill=\"#555\">segment widths grow with log2(size) — not to scale; boundaries in hex and binary units</text>\n");
        Legend(sb, 56);
        double y = Header;
        foreach (var l in layouts)
        {
            Panel(sb, l, y);
            y += PanelHeight;
        }
        sb.Append("</svg>\n");
        return sb.ToString();
    }

    public static string Describe(MachineConfig c)
    {
        string windows = c.PciWindows.Count == 0 ? "no PCI window"
            : string.Join(", ", c.PciWindows.Select(w => $"PCI window [{Units.Human(w.Start)}, {Units.Human(w.Start + w.Length)})"));
        return $"{(c.Architecture == Architecture.X86_64 ? "x86-64" : "arm64")}, {c.PhysicalAddressBits}-bit physical, {Units.Human(c.RamBytes)} RAM, {windows}";
    }

    public static string DesignTitle(DevicePrivateDesign d) => d == DevicePrivateDesign.PhysicalAddressSpace
        ? "Today — DevicePrivateDesign.PhysicalAddressSpace"
        : "Redesign — DevicePrivateDesign.DeviceAddressSpace";

    private static void Panel(StringBuilder sb, MachineLayout l, double y)
    {
        sb.Append($"  <g class=\"design\" data-design=\"{l.Design}\">\n");
        sb.Append($"    <text x=\"{XmlText.N(Left - 10)}\" y=\"{XmlText.N(y + 20)}\" font-size=\"14\" font-weight=\"bold\">{XmlText.Escape(DesignTitle(l.Design))}</text>\n");
        string probed = l.Probed.Count == 0 ? "no dmirror unit probed" : "probed: " + string.Join(", ", l.Probed);
        sb.Append($"    <text x=\"{XmlText.N(Left + BarWidth)}\" y=\"{XmlText.N(y + 20)}\" text-anchor=\"end\" font-size=\"11\" fill=\"#333\">{XmlText.Escape(probed)}</text>\n");
        sb.Append($"    <text x=\"{XmlText.N(Left)}\" y=\"{XmlText.N(y + 42)}\" font-weight=\"bold\">physical address space [0, 2^{l.Config.PhysicalAddressBits}) — /proc/iomem</text>\n");
        Bar(sb, l.Physical, y + 50, "physical", l.Bars);
        double dy = y + 50 + BarHeight + 80;
        if (l.DevicePrivate is { } dp)
        {
            int bits = System.Numerics.BitOperations.Log2(l.DevicePrivateLimit);
            sb.Append($"    <text x=\"{XmlText.N(Left)}\" y=\"{XmlText.N(dy + 16)}\" font-weight=\"bold\">device-private address space [0, 2^{bits}) — separate; pagemaps by offset (no PFNs), nothing in /proc/iomem</text>\n");
            Bar(sb, dp, dy + 24, "device-private");
        }
        else
        {
            sb.Append($"    <text x=\"{XmlText.N(Left)}\" y=\"{XmlText.N(dy + 16)}\" font-weight=\"bold\">device-private address space</text>\n");
            sb.Append($"    <text x=\"{XmlText.N(Left)}\" y=\"{XmlText.N(dy + 36)}\" fill=\"#333\">{XmlText.Escape(MachineLayout.NoDevicePrivateSpace)}</text>\n");
            foreach (var (f, i) in l.Failures.Take(DmesgLines).Select((f, i) => (f, i)))
                sb.Append($"    <text x=\"{XmlText.N(Left)}\" y=\"{XmlText.N(dy + 56 + i * 16)}\" fill=\"#b00020\" font-family=\"monospace\" font-size=\"10.5\">{XmlText.Escape(Fit(f, 140))}</text>\n");
            if (l.Failures.Count > DmesgLines)
                sb.Append($"    <text x=\"{XmlText.N(Left)}\" y=\"{XmlText.N(dy + 56 + DmesgLines * 16)}\" fill=\"#b00020\" font-size=\"10.5\">… {l.Failures.Count - DmesgLines} more dmesg lines (hmmsim layout prints them all)</text>\n");
        }
        sb.Append("  </g>\n");
    }

    /// <summary>What each colour means, once above the panels.</summary>
    private static void Legend(StringBuilder sb, double y)
    {
        (LayoutKind Kind, string Name)[] items = [(LayoutKind.SystemRam, "System RAM"), (LayoutKind.PciWindow, "PCI window"), (LayoutKind.Bar, "PCI BAR"), (LayoutKind.DevicePrivate, "device-private memory"),
            (LayoutKind.DeviceCoherent, "device-coherent memory"), (LayoutKind.Other, "other resource"), (LayoutKind.Free, "free")];
        double x = Left;
        sb.Append("  <g class=\"legend\">\n");
        foreach (var (kind, name) in items)
        {
            var (fill, stroke) = Colours(kind);
            string dash = kind == LayoutKind.Free ? " stroke-dasharray=\"4 3\"" : "";
            sb.Append($"    <rect x=\"{XmlText.N(x)}\" y=\"{XmlText.N(y - 10)}\" width=\"14\" height=\"12\" fill=\"{fill}\" stroke=\"{stroke}\"{dash}/>");
            sb.Append($"<text x=\"{XmlText.N(x + 19)}\" y=\"{XmlText.N(y)}\" font-size=\"11\">{XmlText.Escape(name)}</text>\n");
            x += 19 + name.Length * 6.4 + 22;
        }
        sb.Append("  </g>\n");
    }

    private static (string Fill, string Stroke) Colours(LayoutKind k) => k switch
    {
        LayoutKind.SystemRam => ("#cfe8cf", "#333"),
        LayoutKind.PciWindow => ("#d9d9ef", "#333"),
        LayoutKind.Bar => ("#9e9ed6", "#333"),
        LayoutKind.DevicePrivate => ("#f6c28b", "#333"),
        LayoutKind.DeviceCoherent => ("#a8dadc", "#333"),
        LayoutKind.Other => ("#e4e4e4", "#333"),
        _ => ("#fafafa", "#999"),
    };

    /// <summary>log2-based width weight of a range: every range visible, big ones wider.</summary>
    private static double Weight(ulong size) => Math.Max(1.0, Math.Log2(Math.Max(1.0, size)) - 18);

    private static void Bar(StringBuilder sb, IReadOnlyList<LayoutRange> ranges, double y, string space, IReadOnlyList<LayoutRange>? bars = null)
    {
        var weights = ranges.Select(r => Weight(r.Size)).ToList();
        double total = weights.Sum();
        double x = Left;
        // (x, address, priority): the top-level boundaries label first, BAR boundaries where room is left.
        var boundaries = new List<(double X, ulong Address, int Priority)>();
        sb.Append($"    <g class=\"space\" data-space=\"{space}\">\n");
        for (int i = 0; i < ranges.Count; i++)
        {
            var r = ranges[i];
            double w = total == 0 ? BarWidth : weights[i] / total * BarWidth;
            var inside = bars is null || r.Kind != LayoutKind.PciWindow ? [] : bars.Where(b => b.Start >= r.Start && b.End <= r.End).ToList();
            if (inside.Count == 0)
                Segment(sb, r, x, w, y, null);
            else
                Window(sb, r, inside, x, w, y, boundaries);
            boundaries.Add((x, r.Start, 0));
            x += w;
        }
        if (ranges.Count > 0)
            boundaries.Add((x, ranges[^1].End, 0));
        Ticks(sb, boundaries, y);
        sb.Append("    </g>\n");
    }

    /// <summary>One range's box with its name and size. <paramref name="labelAt"/>, when given, is the
    /// part of the box the labels are centred in (a window's largest unassigned stretch).</summary>
    private static void Segment(StringBuilder sb, LayoutRange r, double x, double w, double y, (double X, double W)? labelAt, double inset = 0)
    {
        var (fill, stroke) = Colours(r.Kind);
        string dash = r.Kind == LayoutKind.Free ? " stroke-dasharray=\"4 3\"" : "";
        string tip = $"{r.Name} [{Units.Hex(r.Start)}-{Units.Hex(r.End - 1)}] {Units.Human(r.Size)}";
        sb.Append($"      <g class=\"{(r.Kind == LayoutKind.Bar ? "bar" : "range")}\"><title>{XmlText.Escape(tip)}</title><rect x=\"{XmlText.N(x)}\" y=\"{XmlText.N(y + inset)}\" width=\"{XmlText.N(w)}\" height=\"{XmlText.N(BarHeight - 2 * inset)}\" fill=\"{fill}\" stroke=\"{stroke}\"{dash}/>");
        if (labelAt is not { } at)
            at = (x, w);
        if (at.W > 0)
        {
            // Widths per character are generous (12 px sans-serif up to 7.5 px, 10 px up to 6.3 px) so a
            // label never spills into its neighbour; a name that does not fit keeps its distinctive end.
            int maxChars = (int)((at.W - 6) / 7.5), maxSmall = (int)((at.W - 6) / 6.3);
            if (maxChars >= 3)
                sb.Append($"<text x=\"{XmlText.N(at.X + at.W / 2)}\" y=\"{XmlText.N(y + 20)}\" text-anchor=\"middle\">{XmlText.Escape(FitEnd(r.Name, maxChars))}</text>");
            if (maxSmall >= 3)
                sb.Append($"<text x=\"{XmlText.N(at.X + at.W / 2)}\" y=\"{XmlText.N(y + 36)}\" text-anchor=\"middle\" font-size=\"10\" fill=\"#333\">{XmlText.Escape(Fit(Units.Approx(r.Size), maxSmall))}</text>");
        }
        sb.Append("</g>\n");
    }

    /// <summary>The BARs inside a PCI window, drawn as inset boxes on the same log2 scale within the
    /// window's box; the window's own labels go in its largest unassigned stretch.</summary>
    private static void Window(StringBuilder sb, LayoutRange window, List<LayoutRange> bars, double x, double w, double y, List<(double X, ulong Address, int Priority)> boundaries)
    {
        var parts = FillWindow(window, bars);
        var weights = parts.Select(p => Weight(p.Size)).ToList();
        double total = weights.Sum(), px = x;
        (double X, double W) widest = (x, 0);
        var placed = new List<(LayoutRange Part, double X, double W)>();
        for (int i = 0; i < parts.Count; i++)
        {
            double pw = weights[i] / total * w;
            placed.Add((parts[i], px, pw));
            if (parts[i].Kind != LayoutKind.Bar && pw > widest.W)
                widest = (px, pw);
            px += pw;
        }
        Segment(sb, window, x, w, y, widest);
        foreach (var (part, bx, bw) in placed)
        {
            if (part.Kind != LayoutKind.Bar)
                continue;
            Segment(sb, part, bx + 1.5, bw - 3, y, null, inset: 4);
            boundaries.Add((bx, part.Start, 1));
            boundaries.Add((bx + bw, part.End, 1));
        }
    }

    /// <summary>The window split into its BARs and the unassigned stretches between them.</summary>
    private static List<LayoutRange> FillWindow(LayoutRange window, List<LayoutRange> bars)
    {
        var parts = new List<LayoutRange>();
        ulong cursor = window.Start;
        foreach (var b in bars)
        {
            if (b.Start > cursor)
                parts.Add(new LayoutRange("unassigned", cursor, b.Start, LayoutKind.PciWindow));
            parts.Add(b);
            cursor = Math.Max(cursor, b.End);
        }
        if (cursor < window.End)
            parts.Add(new LayoutRange("unassigned", cursor, window.End, LayoutKind.PciWindow));
        return parts;
    }

    /// <summary>Boundary ticks and their labels (hex above human units) on one row: every boundary gets
    /// its tick; a label goes where it does not collide with one already placed, the space's two ends
    /// first, then the other top-level boundaries left to right, then the BARs'.</summary>
    private static void Ticks(StringBuilder sb, List<(double X, ulong Address, int Priority)> boundaries, double y)
    {
        double first = boundaries.Count > 0 ? boundaries.Min(b => b.X) : 0, last = boundaries.Count > 0 ? boundaries.Max(b => b.X) : 0;
        var order = boundaries
            .Select((b, i) => (b, i))
            .OrderBy(t => t.b.X == first || t.b.X == last ? 0 : 1 + t.b.Priority)
            .ThenBy(t => t.b.X)
            .ToList();
        var taken = new List<(double Lo, double Hi)>();
        var labelled = new HashSet<double>();
        double ty = y + BarHeight + 14;
        foreach (var (b, _) in order)
        {
            sb.Append($"      <line x1=\"{XmlText.N(b.X)}\" y1=\"{XmlText.N(y + BarHeight)}\" x2=\"{XmlText.N(b.X)}\" y2=\"{XmlText.N(ty - 10)}\" stroke=\"#888\" stroke-width=\"0.8\"/>");
            string hex = Units.Hex(b.Address), human = Units.Approx(b.Address);
            double half = Math.Max(hex.Length, human.Length) * 3.3 + 4;
            string anchor = b.X - half < 0 ? "start" : b.X + half > Width ? "end" : "middle";
            double lo = anchor == "start" ? b.X : anchor == "end" ? b.X - 2 * half : b.X - half, hi = lo + 2 * half;
            if (labelled.Contains(b.X) || taken.Any(t => lo < t.Hi && t.Lo < hi))
            {
                sb.Append('\n');
                continue;
            }
            taken.Add((lo, hi));
            labelled.Add(b.X);
            sb.Append($"<text x=\"{XmlText.N(b.X)}\" y=\"{XmlText.N(ty)}\" text-anchor=\"{anchor}\" font-family=\"monospace\" font-size=\"10.5\">{XmlText.Escape(hex)}</text>");
            sb.Append($"<text x=\"{XmlText.N(b.X)}\" y=\"{XmlText.N(ty + 11)}\" text-anchor=\"{anchor}\" font-size=\"10\" fill=\"#555\">{XmlText.Escape(human)}</text>\n");
        }
    }

    private static string FitEnd(string text, int maxChars) =>
        text.Length <= maxChars ? text : maxChars <= 1 ? "…" : "…" + text[^(maxChars - 1)..];

    private static string Fit(string text, int maxChars) =>
        text.Length <= maxChars ? text : maxChars <= 1 ? "…" : text[..(maxChars - 1)] + "…";
}
