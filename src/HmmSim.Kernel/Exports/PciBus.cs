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
}
