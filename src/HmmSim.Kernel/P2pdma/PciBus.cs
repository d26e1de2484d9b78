namespace HmmSim.Kernel;

/// <summary>The PCI core a driver sees: its device, found by index as a probe would be handed it.</summary>
public static class PciBus
{
    /// <summary>The model's PCI endpoints in bus order (what pci_get_device walks); null past the last.</summary>
    public static PciDev? PciGetDevice(KernelState kernel, int index)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        var eps = kernel.Pci.Endpoints;
        return (uint)index < (uint)eps.Count ? eps[index] : null;
    }

    /// <summary>pci_set_drvdata.</summary>
    public static void PciSetDrvdata(PciDev pdev, object? data) => pdev.Driver = data;

    /// <summary>pci_get_drvdata.</summary>
    public static object? PciGetDrvdata(PciDev pdev) => pdev.Driver;

    /// <summary>Firmware's BAR assignment at boot: each of the first <paramref name="count"/>
    /// endpoints gets a BAR of <paramref name="size"/> inside a PCI window when the machine has any,
    /// else in free physical space above RAM.</summary>
    internal static void AssignBars(KernelState kernel, int count, ulong size)
    {
        var windows = kernel.Resources.TopLevel.Where(r => (r.Flags & IoResourceFlags.Window) != 0).ToList();
        for (int unit = 0; unit < count && unit < kernel.Pci.Endpoints.Count; unit++)
        {
            var ep = kernel.Pci.Endpoints[unit];
            string name = $"{ep.Name} BAR1";
            Resource? bar = null;
            foreach (var w in windows)
                if (kernel.Resources.GetFreeMemRegion(w, size, size, name, IoResDesc.None, GfrFlags.Descending | GfrFlags.RequestRegion, out bar) == Errno.None)
                    break;
            if (bar is null && windows.Count == 0)
                kernel.Resources.GetFreeMemRegion(size, size, name, IoResDesc.None, GfrFlags.Descending | GfrFlags.RequestRegion, out bar);
            if (bar is null)
            {
                kernel.Dmesg.Log($"pci {ep.Name}: no space for a {size >> 20} MB BAR1");
                continue;
            }
            ep.Bar = new PhysicalRange(bar.Start, size);
        }
    }
}
