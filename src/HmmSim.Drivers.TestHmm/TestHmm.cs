namespace HmmSim.Drivers.TestHmm;

/// <summary>The module (hmm_dmirror_init / hmm_dmirror_exit of lib/test_hmm.c): four /dev/hmm_dmirrorN
/// units, 0 and 1 device-private, 2 and 3 device-coherent over "special purpose memory" placed in
/// the first free physical space above RAM (spm_addr_dev0/1).</summary>
internal sealed class TestHmm
{
    public const int Units = 4;

    private readonly DmirrorDevice?[] _devices;

    private TestHmm(KernelState kernel, DmirrorDevice?[] devices)
    {
        Kernel = kernel;
        _devices = devices;
    }

    public KernelState Kernel { get; }

    /// <summary>hmm_dmirror_init: a unit whose first chunk cannot be set up is absent (no /dev node);
    /// the others still probe. Each device-private unit with a BAR registers it as P2PDMA memory
    /// (pci_p2pdma_add_resource, as nouveau does with BAR1 in the P2P series).</summary>
    public static TestHmm HmmDmirrorInit(KernelState kernel)
    {
        var devices = new DmirrorDevice?[Units];
        for (int unit = 0; unit < 2; unit++)
        {
            var dev = new DmirrorDevice(kernel, unit, DmirrorMemoryType.DevicePrivate, 0);
            AddP2pResource(kernel, dev);
            devices[unit] = dev.Init() == Errno.None ? dev : null;
        }
        var spm = new ulong[2];
        for (int i = 0; i < 2; i++)
        {
            var err = Ioport.GetFreeMemRegion(kernel, DmirrorDevice.DevmemChunkSize, DmirrorDevice.DevmemChunkSize, $"hmm_dmirror_spm{i}", out var range);
            if (err != Errno.None)
            {
                Printk(kernel, $"hmm_dmirror: no free physical space above RAM for spm_addr_dev{i} ({Memremap.ErrName(err)}); device-coherent units are absent");
                return Finish(kernel, devices);
            }
            spm[i] = range.Start;
        }
        // (MINOR - 2) ? spm_addr_dev0 : spm_addr_dev1 — unit 2 takes dev1's range, unit 3 dev0's, as the module does.
        for (int unit = 2; unit < Units; unit++)
        {
            var dev = new DmirrorDevice(kernel, unit, DmirrorMemoryType.DeviceCoherent, unit - 2 != 0 ? spm[0] : spm[1]);
            devices[unit] = dev.Init() == Errno.None ? dev : null;
        }
        return Finish(kernel, devices);
    }

    private static TestHmm Finish(KernelState kernel, DmirrorDevice?[] devices)
    {
        foreach (var d in devices)
            if (d is not null)
                Printk(kernel, $"{d.Name}: probed ({(d.IsPrivate ? "device private" : "device coherent")})");
        return new TestHmm(kernel, devices);
    }

    private static void AddP2pResource(KernelState kernel, DmirrorDevice dev)
    {
        var bar = dev.Pdev.Bar;
        if (bar.Length == 0)
        {
            Printk(kernel, $"{dev.Name}: no BAR1; no P2P memory");
            return;
        }
        var err = P2pdma.PciP2pdmaAddResource(kernel, dev.Pdev, bar.Length, 0);
        if (err != Errno.None)
            Printk(kernel, $"pci {dev.Pdev.Name}: PCI P2P memory allocation failed ({Memremap.ErrName(err)}), HMM P2P won't be supported");
    }

    /// <summary>The unit's device, or null when its probe failed (no /dev node).</summary>
    public DmirrorDevice? Device(int unit) => (uint)unit < (uint)_devices.Length ? _devices[unit] : null;

    /// <summary>dmirror_fops_open in the process whose address space is <paramref name="mm"/>.</summary>
    public DmirrorFile Open(int unit, MmStruct mm) =>
        new(Device(unit) ?? throw new ArgumentOutOfRangeException(nameof(unit), $"/dev/hmm_dmirror{unit} does not exist"), mm);

    /// <summary>hmm_dmirror_exit: each device's release evicts and unmaps its chunks.</summary>
    public void HmmDmirrorExit()
    {
        foreach (var d in _devices)
            d?.RemoveChunks();
    }
}
