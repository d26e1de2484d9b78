namespace HmmSim.Kernel;

/// <summary>The resource functions a driver may call (include/linux/ioport.h, kernel/resource.c),
/// over iomem_resource.</summary>
public static class Ioport
{
    /// <summary>get_free_mem_region with GFR_REQUEST_REGION: find and claim a free, aligned range of
    /// physical address space above RAM named <paramref name="name"/>.</summary>
    public static Errno GetFreeMemRegion(KernelState kernel, ulong size, ulong align, string name, out PhysicalRange range)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        range = default;
        var err = kernel.Resources.GetFreeMemRegion(size, align, name, IoResDesc.None, GfrFlags.RequestRegion, out var res);
        if (err == Errno.None)
            range = new PhysicalRange(res!.Start, size);
        return err;
    }
}
