namespace HmmSim.Kernel;

/// <summary>A page's offset in the device-private address space of the redesign (in pages, as
/// the series' device_private_page_to_offset returns it). It is not a PFN: entries that carry
/// one say so by their swap type, and nothing converts it to a <see cref="Pfn"/>.</summary>
public readonly record struct DevicePrivateIndex(ulong Value) : IComparable<DevicePrivateIndex>
{
    public DevicePrivateIndex Add(ulong pages) => new(Value + pages);
    public int CompareTo(DevicePrivateIndex other) => Value.CompareTo(other.Value);
    public static bool operator <(DevicePrivateIndex a, DevicePrivateIndex b) => a.Value < b.Value;
    public static bool operator >(DevicePrivateIndex a, DevicePrivateIndex b) => a.Value > b.Value;
    public static bool operator <=(DevicePrivateIndex a, DevicePrivateIndex b) => a.Value <= b.Value;
    public static bool operator >=(DevicePrivateIndex a, DevicePrivateIndex b) => a.Value >= b.Value;
    public override string ToString() => $"dpi 0x{Value:x}";
}
