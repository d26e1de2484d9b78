using System.Text;
using HmmSim.Cli.Report;

namespace HmmSim.Cli.Layout;

/// <summary>Draws the address spaces of one or more machines as a self-contained SVG: per design, the
/// physical address space as a horizontal bar and, in the redesign, the device-private address space
/// below it. Segment widths grow with log2(size), so 256 MiB and an 8 TiB window are both visible;
/// the boundaries are labelled in hex and in binary units.</summary>
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
        sb.Append("  <desc>Physical address space per design (top-level /proc/iomem resources, free gaps) and, in the redesign, the separate device-private address space. Widths grow with log2(size): not to scale.</desc>\n");
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
        Bar(sb, l.Physical, y + 50, "physical");
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
        (LayoutKind Kind, string Name)[] items = [(LayoutKind.SystemRam, "System RAM"), (LayoutKind.PciWindow, "PCI window"), (LayoutKind.DevicePrivate, "device-private memory"),
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
        LayoutKind.DevicePrivate => ("#f6c28b", "#333"),
        LayoutKind.DeviceCoherent => ("#a8dadc", "#333"),
        LayoutKind.Other => ("#e4e4e4", "#333"),
        _ => ("#fafafa", "#999"),
    };

    private static void Bar(StringBuilder sb, IReadOnlyList<LayoutRange> ranges, double y, string space)
    {
        var weights = ranges.Select(r => Math.Max(1.0, Math.Log2(Math.Max(1.0, r.Size)) - 18)).ToList();
        double total = weights.Sum();
        double x = Left;
        var boundaries = new List<(double X, ulong Address)>();
        sb.Append($"    <g class=\"space\" data-space=\"{space}\">\n");
        for (int i = 0; i < ranges.Count; i++)
        {
            var r = ranges[i];
            double w = total == 0 ? BarWidth : weights[i] / total * BarWidth;
            var (fill, stroke) = Colours(r.Kind);
            string dash = r.Kind == LayoutKind.Free ? " stroke-dasharray=\"4 3\"" : "";
            string tip = $"{r.Name} [{Units.Hex(r.Start)}-{Units.Hex(r.End - 1)}] {Units.Human(r.Size)}";
            sb.Append($"      <g><title>{XmlText.Escape(tip)}</title><rect x=\"{XmlText.N(x)}\" y=\"{XmlText.N(y)}\" width=\"{XmlText.N(w)}\" height=\"{XmlText.N(BarHeight)}\" fill=\"{fill}\" stroke=\"{stroke}\"{dash}/>");
            // Widths per character are generous (12 px sans-serif up to 7.5 px, 10 px up to 6.3 px) so a
            // label never spills into its neighbour; a name that does not fit keeps its distinctive end.
            int maxChars = (int)((w - 6) / 7.5), maxSmall = (int)((w - 6) / 6.3);
            if (maxChars >= 3)
                sb.Append($"<text x=\"{XmlText.N(x + w / 2)}\" y=\"{XmlText.N(y + 20)}\" text-anchor=\"middle\">{XmlText.Escape(FitEnd(r.Name, maxChars))}</text>");
            if (maxSmall >= 3)
                sb.Append($"<text x=\"{XmlText.N(x + w / 2)}\" y=\"{XmlText.N(y + 36)}\" text-anchor=\"middle\" font-size=\"10\" fill=\"#333\">{XmlText.Escape(Fit(Units.Approx(r.Size), maxSmall))}</text>");
            sb.Append("</g>\n");
            boundaries.Add((x, r.Start));
            x += w;
        }
        if (ranges.Count > 0)
            boundaries.Add((x, ranges[^1].End));
        // Boundary labels: ticks, then hex and human units; a label that would collide with the
        // previous one on its row drops to the next row.
        var rowEnds = new double[3];
        Array.Fill(rowEnds, double.NegativeInfinity);
        foreach (var (bx, addr) in boundaries)
        {
            string hex = Units.Hex(addr), human = Units.Approx(addr);
            double half = Math.Max(hex.Length, human.Length) * 3.3 + 4;
            string anchor = bx - half < 0 ? "start" : bx + half > Width ? "end" : "middle";
            double lo = anchor == "start" ? bx : anchor == "end" ? bx - 2 * half : bx - half;
            int row = Array.FindIndex(rowEnds, e => e < lo);
            if (row < 0)
                row = rowEnds.Length - 1;
            rowEnds[row] = lo + 2 * half;
            double ty = y + BarHeight + 14 + row * 24;
            sb.Append($"      <line x1=\"{XmlText.N(bx)}\" y1=\"{XmlText.N(y + BarHeight)}\" x2=\"{XmlText.N(bx)}\" y2=\"{XmlText.N(ty - 10)}\" stroke=\"#888\" stroke-width=\"0.8\"/>");
            sb.Append($"<text x=\"{XmlText.N(bx)}\" y=\"{XmlText.N(ty)}\" text-anchor=\"{anchor}\" font-family=\"monospace\" font-size=\"10.5\">{XmlText.Escape(hex)}</text>");
            sb.Append($"<text x=\"{XmlText.N(bx)}\" y=\"{XmlText.N(ty + 11)}\" text-anchor=\"{anchor}\" font-size=\"10\" fill=\"#555\">{XmlText.Escape(human)}</text>\n");
        }
        sb.Append("    </g>\n");
    }

    private static string FitEnd(string text, int maxChars) =>
        text.Length <= maxChars ? text : maxChars <= 1 ? "…" : "…" + text[^(maxChars - 1)..];

    private static string Fit(string text, int maxChars) =>
        text.Length <= maxChars ? text : maxChars <= 1 ? "…" : text[..(maxChars - 1)] + "…";
}
