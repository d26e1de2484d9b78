using System.Globalization;
using System.Text;
using K = HmmSim.Kernel;

namespace HmmSim;

/// <summary>One page of <see cref="Process.DumpPageTables"/>: the entry that maps it, decoded by the
/// kernel's own helpers. <see cref="Level"/> is "pte", "pmd" or "none"; <see cref="Kind"/> is "present",
/// "none", or the SWP_* name of a non-present entry (SWP_DEVICE_WRITE, SWP_MIGRATION_DEVICE_READ, ...).
/// A present or PFN-carrying entry has <see cref="Pfn"/>; a redesign device-private entry has
/// <see cref="DevicePrivateOffset"/> instead. <see cref="Flags"/> are the entry's bits by name:
/// write, dirty, young, soft-dirty, uffd-wp, exclusive, special, protnone.</summary>
internal sealed record PageTableDumpEntry(
    ulong Address,
    string Level,
    ulong Raw,
    bool Present,
    string Kind,
    uint? SwapType,
    ulong? Pfn,
    ulong? DevicePrivateOffset,
    IReadOnlyList<string> Flags)
{
    private static readonly (K.PtDumpFlags Flag, string Name)[] _flagNames =
    [
        (K.PtDumpFlags.Write, "write"), (K.PtDumpFlags.Dirty, "dirty"), (K.PtDumpFlags.Young, "young"),
        (K.PtDumpFlags.SoftDirty, "soft-dirty"), (K.PtDumpFlags.UffdWp, "uffd-wp"), (K.PtDumpFlags.Exclusive, "exclusive"),
        (K.PtDumpFlags.Special, "special"), (K.PtDumpFlags.ProtNone, "protnone"),
    ];

    internal static PageTableDumpEntry From(K.PtDumpEntry e)
    {
        var flags = new List<string>();
        foreach (var (flag, name) in _flagNames)
            if ((e.Flags & flag) != 0)
                flags.Add(name);
        string level = e.Level switch { K.PtDumpLevel.Pte => "pte", K.PtDumpLevel.Pmd => "pmd", _ => "none" };
        string kind = e.Present ? "present" : K.PtDump.SwapTypeName(e.Type);
        bool swap = !e.Present && e.Type != K.SoftleafType.None;
        return new PageTableDumpEntry(e.Addr, level, e.Raw, e.Present, kind, swap ? e.SwapType : null,
            e.IsDevicePrivateIndex ? null : e.Frame, e.IsDevicePrivateIndex ? e.Frame : null, flags);
    }

    /// <summary>"pte present pfn=0x1234 write dirty young", "pmd SWP_DEVICE_WRITE(29) dev-offset=0x10 write".</summary>
    public override string ToString()
    {
        var sb = new StringBuilder(Level);
        sb.Append(' ').Append(Kind);
        if (SwapType is { } t)
            sb.Append(CultureInfo.InvariantCulture, $"({t})");
        if (Pfn is { } pfn)
            sb.Append(CultureInfo.InvariantCulture, $" pfn=0x{pfn:x}");
        if (DevicePrivateOffset is { } off)
            sb.Append(CultureInfo.InvariantCulture, $" dev-offset=0x{off:x}");
        foreach (var f in Flags)
            sb.Append(' ').Append(f);
        if (Raw != 0)
            sb.Append(CultureInfo.InvariantCulture, $" (entry 0x{Raw:x16})");
        return sb.ToString();
    }
}
