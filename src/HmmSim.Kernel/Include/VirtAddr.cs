namespace HmmSim.Kernel;

/// <summary>A user virtual address in some mm.</summary>
public readonly record struct VirtAddr(ulong Value) : IComparable<VirtAddr>
{
    public VirtAddr Add(ulong bytes) => new(Value + bytes);
    public int CompareTo(VirtAddr other) => Value.CompareTo(other.Value);
    public static bool operator <(VirtAddr a, VirtAddr b) => a.Value < b.Value;
    public static bool operator >(VirtAddr a, VirtAddr b) => a.Value > b.Value;
    public static bool operator <=(VirtAddr a, VirtAddr b) => a.Value <= b.Value;
    public static bool operator >=(VirtAddr a, VirtAddr b) => a.Value >= b.Value;
    public override string ToString() => $"0x{Value:x}";
}
