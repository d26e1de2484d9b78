namespace HmmSim.Kernel;

/// <summary>A user virtual address in some mm.</summary>
/// <param name="Value">The address in bytes.</param>
public readonly record struct VirtAddr(ulong Value) : IComparable<VirtAddr>
{
    /// <summary>The address <paramref name="bytes"/> bytes further on.</summary>
    public VirtAddr Add(ulong bytes) => new(Value + bytes);
    /// <summary>Orders addresses numerically.</summary>
    public int CompareTo(VirtAddr other) => Value.CompareTo(other.Value);
    /// <summary>Numeric address comparison.</summary>
    public static bool operator <(VirtAddr a, VirtAddr b) => a.Value < b.Value;
    /// <summary>Numeric address comparison.</summary>
    public static bool operator >(VirtAddr a, VirtAddr b) => a.Value > b.Value;
    /// <summary>Numeric address comparison.</summary>
    public static bool operator <=(VirtAddr a, VirtAddr b) => a.Value <= b.Value;
    /// <summary>Numeric address comparison.</summary>
    public static bool operator >=(VirtAddr a, VirtAddr b) => a.Value >= b.Value;
    /// <summary>The address in hex.</summary>
    public override string ToString() => $"0x{Value:x}";
}
