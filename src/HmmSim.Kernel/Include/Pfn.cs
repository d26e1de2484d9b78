namespace HmmSim.Kernel;

/// <summary>A page frame number in the physical address space. Never a device-private index:
/// the two are distinct types and no implicit conversion exists between them.</summary>
public readonly record struct Pfn(ulong Value) : IComparable<Pfn>
{
    public const int PageShift = 12;

    public PhysAddr ToPhys() => new(Value << PageShift);
    public static Pfn FromPhys(PhysAddr addr) => new(addr.Value >> PageShift);
    public Pfn Add(ulong pages) => new(Value + pages);
    public int CompareTo(Pfn other) => Value.CompareTo(other.Value);
    public static bool operator <(Pfn a, Pfn b) => a.Value < b.Value;
    public static bool operator >(Pfn a, Pfn b) => a.Value > b.Value;
    public static bool operator <=(Pfn a, Pfn b) => a.Value <= b.Value;
    public static bool operator >=(Pfn a, Pfn b) => a.Value >= b.Value;
    public override string ToString() => $"pfn 0x{Value:x}";
}
