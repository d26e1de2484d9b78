namespace HmmSim.Kernel;

/// <summary>A CPU physical address (phys_addr_t).</summary>
public readonly record struct PhysAddr(ulong Value)
{
    public override string ToString() => $"0x{Value:x}";
}
