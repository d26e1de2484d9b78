namespace HmmSim.Kernel;

/// <summary>A page frame number in the physical address space. Never a device-private index:
/// the two are distinct types and no implicit conversion exists between them.</summary>
/// <param name="Value">The frame number: physical address &gt;&gt; PAGE_SHIFT.</param>
public readonly record struct Pfn(ulong Value) : IComparable<Pfn>
{
    /// <summary>PAGE_SHIFT: a pfn is a physical address shifted right by 12.</summary>
    public const int PageShift = 12;

    /// <summary>PFN_PHYS: the physical address of the first byte of this frame.</summary>
    public PhysAddr ToPhys() => new(Value << PageShift);
    /// <summary>PHYS_PFN: the frame holding physical address <paramref name="addr"/>.</summary>
    public static Pfn FromPhys(PhysAddr addr) => new(addr.Value >> PageShift);
    /// <summary>The pfn <paramref name="pages"/> frames further on.</summary>
    public Pfn Add(ulong pages) => new(Value + pages);
    /// <summary>Orders pfns by frame number.</summary>
    public int CompareTo(Pfn other) => Value.CompareTo(other.Value);
    /// <summary>Frame-number comparison.</summary>
    public static bool operator <(Pfn a, Pfn b) => a.Value < b.Value;
    /// <summary>Frame-number comparison.</summary>
    public static bool operator >(Pfn a, Pfn b) => a.Value > b.Value;
    /// <summary>Frame-number comparison.</summary>
    public static bool operator <=(Pfn a, Pfn b) => a.Value <= b.Value;
    /// <summary>Frame-number comparison.</summary>
    public static bool operator >=(Pfn a, Pfn b) => a.Value >= b.Value;
    /// <summary>"pfn 0x…", hex as the kernel prints it.</summary>
    public override string ToString() => $"pfn 0x{Value:x}";
}
