namespace HmmSim.Kernel;

/// <summary>A user virtual address in some mm.</summary>
/// <param name="Value">The address in bytes.</param>
public readonly record struct VirtAddr(ulong Value) : IComparable<VirtAddr>
{
    /// <summary>PAGE_SIZE in bytes.</summary>
    public const ulong PageSize = 4096;
    /// <summary>PAGE_MASK: clears the offset within a page.</summary>
    public const ulong PageMask = ~(PageSize - 1);

    /// <summary>PAGE_ALIGNED: the address is on a page boundary.</summary>
    public bool IsPageAligned => (Value & (PageSize - 1)) == 0;
    /// <summary>PAGE_ALIGN_DOWN: the start of the page holding this address.</summary>
    public VirtAddr PageDown => new(Value & PageMask);
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
