namespace HmmSim.Kernel;

/// <summary>struct resource: a named, inclusive [Start, End] range in a resource tree. Children
/// lie inside their parent and siblings are sorted by address and never overlap. The links are
/// set only by <see cref="ResourceTree"/>, under its lock.</summary>
internal sealed class Resource
{
    public Resource(string? name, ulong start, ulong end, IoResourceFlags flags, IoResDesc desc = IoResDesc.None)
    {
        Name = name;
        Start = start;
        End = end;
        Flags = flags;
        Desc = desc;
    }

    /// <summary>DEFINE_RES_NAMED_DESC style: a resource of <paramref name="size"/> bytes at
    /// <paramref name="start"/> (End = start + size - 1, wrapping as the kernel's does).</summary>
    public static Resource FromSize(string? name, ulong start, ulong size, IoResourceFlags flags,
        IoResDesc desc = IoResDesc.None) => new(name, start, unchecked(start + size - 1), flags, desc);

    /// <summary>The owner's name; null prints as "&lt;BAD&gt;" in /proc/iomem, as r_show does.</summary>
    public string? Name { get; set; }

    public ulong Start { get; internal set; }

    /// <summary>Last byte of the range (inclusive, as resource.end).</summary>
    public ulong End { get; internal set; }

    public IoResourceFlags Flags { get; internal set; }

    public IoResDesc Desc { get; internal set; }

    public Resource? Parent { get; internal set; }

    public Resource? Child { get; internal set; }

    public Resource? Sibling { get; internal set; }

    /// <summary>resource_size(): End - Start + 1 (0 for a resource covering all 2^64 bytes).</summary>
    public ulong Size => unchecked(End - Start + 1);

    /// <summary>resource_type(): the IORESOURCE_TYPE_BITS field.</summary>
    public IoResourceFlags Type => Flags & IoResourceFlags.TypeBits;

    /// <summary>resource_ext_type(): the IORESOURCE_EXT_TYPE_BITS field.</summary>
    public IoResourceFlags ExtType => Flags & IoResourceFlags.ExtTypeBits;

    public bool IsBusy => (Flags & IoResourceFlags.Busy) != 0;

    /// <summary>resource_overlaps().</summary>
    public bool Overlaps(ulong start, ulong end) => Start <= end && End >= start;

    /// <summary>The children, lowest address first (a snapshot of the sibling list).</summary>
    public IReadOnlyList<Resource> Children()
    {
        var list = new List<Resource>();
        for (var c = Child; c != null; c = c.Sibling)
            list.Add(c);
        return list;
    }

    /// <summary>%pR-like text, e.g. "[mem 0x200000000-0x3ffffffff]".</summary>
    public override string ToString() =>
        $"{Name ?? "<BAD>"} [{(Type == IoResourceFlags.Io ? "io" : "mem")} 0x{Start:x}-0x{End:x}{(IsBusy ? " busy" : "")}]";

    internal Resource CopyUnlinked() => new(Name, Start, End, Flags, Desc);
}
