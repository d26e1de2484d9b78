namespace HmmSim.Cli.Layout;

/// <summary>The address spaces of one booted machine: the physical address space (/proc/iomem's
/// top level, gaps filled in as free), the BARs inside its PCI windows (iomem's second level: what
/// takes the window's room) and, in the redesign, the device-private address space.</summary>
internal sealed record MachineLayout(
    MachineConfig Config,
    string Iomem,
    IReadOnlyList<LayoutRange> Physical,
    IReadOnlyList<LayoutRange>? DevicePrivate,
    ulong DevicePrivateLimit,
    IReadOnlyList<string> Probed,
    IReadOnlyList<string> Failures,
    IReadOnlyList<LayoutRange> Bars)
{
    public const string NoDevicePrivateSpace = "none — device-private pages live in the physical space (see iomem)";

    public DevicePrivateDesign Design => Config.DevicePrivateDesign;

    /// <summary>One past the last physical address (2^PhysicalAddressBits).</summary>
    public ulong PhysicalEnd => 1UL << Config.PhysicalAddressBits;

    /// <summary>Boots <paramref name="config"/> (which probes the four dmirror units) and reads its address spaces.</summary>
    public static MachineLayout Capture(MachineConfig config)
    {
        using var m = new Machine(config);
        var physEnd = 1UL << config.PhysicalAddressBits;
        var top = m.IomemTopLevel()
            .Select(r => new LayoutRange(r.Name ?? "<BAD>", r.Start, r.End, KindOf(r.Name, r.DevicePrivate)))
            .ToList();
        IReadOnlyList<LayoutRange>? dp = null;
        ulong limit = 1UL << Machine.MaxPhysmemBits(config.Architecture);
        if (m.DevicePrivateSpaceRanges() is { } space)
        {
            dp = FillGaps(space
                .Select(p => new LayoutRange(p.Name, p.Start, p.End, LayoutKind.DevicePrivate))
                .ToList(), limit);
        }
        var probed = Enumerable.Range(0, 4).Where(m.HasDmirror).Select(u => $"hmm_dmirror{u}").ToList();
        var failures = m.Dmesg()
            .Where(l => l.Contains("failed", StringComparison.Ordinal) || l.Contains("absent", StringComparison.Ordinal))
            .Select(StripTimestamp)
            .ToList();
        var windows = top.Where(r => r.Kind == LayoutKind.PciWindow).Select(r => r.Start).ToHashSet();
        var bars = m.IomemChildren()
            .Where(c => windows.Contains(c.ParentStart))
            .Select(c => new LayoutRange(c.Name ?? "<BAD>", c.Start, c.End, LayoutKind.Bar))
            .OrderBy(r => r.Start)
            .ToList();
        return new MachineLayout(config, m.Iomem(), FillGaps(top, physEnd), dp, limit, probed, failures, bars);
    }

    private static string StripTimestamp(string line)
    {
        // dmesg lines may carry a "[    0.000000] " prefix; keep the message.
        int close = line.StartsWith('[') ? line.IndexOf("] ", StringComparison.Ordinal) : -1;
        return close > 0 ? line[(close + 2)..] : line;
    }

    private static LayoutKind KindOf(string? name, bool devicePrivate)
    {
        if (devicePrivate)
            return LayoutKind.DevicePrivate;
        if (name == "System RAM")
            return LayoutKind.SystemRam;
        if (name == Machine.PciBusName)
            return LayoutKind.PciWindow;
        if (name is { } n && n.StartsWith("hmm_dmirror", StringComparison.Ordinal))
            return LayoutKind.DeviceCoherent;
        return LayoutKind.Other;
    }

    /// <summary>The ranges, sorted, with every gap in [0, <paramref name="end"/>) as a free range.</summary>
    public static List<LayoutRange> FillGaps(IReadOnlyList<LayoutRange> ranges, ulong end)
    {
        var result = new List<LayoutRange>();
        ulong cursor = 0;
        foreach (var r in ranges.OrderBy(r => r.Start))
        {
            if (r.Start > cursor)
                result.Add(new LayoutRange("free", cursor, r.Start, LayoutKind.Free));
            result.Add(r);
            cursor = Math.Max(cursor, r.End);
        }
        if (cursor < end)
            result.Add(new LayoutRange("free", cursor, end, LayoutKind.Free));
        return result;
    }
}
