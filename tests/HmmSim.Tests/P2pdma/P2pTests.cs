namespace HmmSim.Tests.P2pdma;

/// <summary>The P2P series: an importer (unit 1) reads device-private memory of another device
/// (unit 0) through a PCI P2PDMA alias in the owner's BAR instead of migrating it to RAM.</summary>
public class P2pTests
{
    private const ulong Npages = 64;
    private const ulong Size = Npages * 4096;

    public static TheoryData<DevicePrivateDesign> Designs => [DevicePrivateDesign.PhysicalAddressSpace, DevicePrivateDesign.DeviceAddressSpace];

    private sealed class Setup : IDisposable
    {
        public Setup(DevicePrivateDesign design, PciTopology topology = PciTopology.CommonSwitch)
        {
            M = new Machine(new MachineConfig { DevicePrivateDesign = design, PciTopology = topology });
            P = M.CreateProcess();
            Owner = P.OpenDmirror(0);
            Importer = P.OpenDmirror(1);
            Assert.Equal(Errno.None, P.Mmap(0, Size, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out Addr));
            Data = new byte[Size];
            for (int i = 0; i < Data.Length; i += 4)
                BitConverter.TryWriteBytes(Data.AsSpan(i), i * 31 + 7);
            P.Write(Addr, Data);
            var mirror = new byte[Size];
            Assert.Equal(new DmirrorResult(Errno.None, Npages, 0), Owner.MigrateToDevice(Addr, Npages, mirror));
        }

        public Machine M { get; }
        public Process P { get; }
        public Dmirror Owner { get; }
        public Dmirror Importer { get; }
        public readonly ulong Addr;
        public byte[] Data { get; }
        public long Stat(string name) => M.VmStat[name];

        public byte[] OwnerSnapshot()
        {
            var prot = new byte[Npages];
            Assert.Equal(Errno.None, Owner.Snapshot(Addr, Npages, prot).Error);
            return prot;
        }

        public void Dispose()
        {
            Importer.Dispose();
            Owner.Dispose();
            M.Dispose();
        }
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void ImporterReadsTheOwnersPagesThroughTheAliasWithoutMigrating(DevicePrivateDesign design)
    {
        using var s = new Setup(design);
        Assert.Equal(Errno.None, s.Importer.SetFlags(DmirrorFlags.AllowP2P).Error);
        long toRam = s.Stat("device_migrate_to_ram");
        var buf = new byte[Size];
        var r = s.Importer.Read(s.Addr, Npages, buf);
        Assert.Equal(new DmirrorResult(Errno.None, Npages, 1), r);
        Assert.Equal(s.Data, buf);
        Assert.Equal((long)Npages, s.Stat("p2p_alias_pages"));
        Assert.Equal(toRam, s.Stat("device_migrate_to_ram"));
        Assert.All(s.OwnerSnapshot(), b => Assert.Equal((byte)(DmirrorProt.DevPrivateLocal | DmirrorProt.Write), b));
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void WithoutAllowP2pTheImportersFaultMigratesThePagesToRam(DevicePrivateDesign design)
    {
        using var s = new Setup(design);
        var buf = new byte[Size];
        Assert.Equal(new DmirrorResult(Errno.None, Npages, 1), s.Importer.Read(s.Addr, Npages, buf));
        Assert.Equal(s.Data, buf);
        Assert.Equal(0, s.Stat("p2p_alias_pages"));
        Assert.Equal((long)Npages, s.Stat("device_migrate_to_ram"));
        Assert.All(s.OwnerSnapshot(), b => Assert.Equal((byte)DmirrorProt.Write, b));
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void SeparateRootPortsRefuseTheAliasAndTheImporterFallsBackToMigration(DevicePrivateDesign design)
    {
        using var s = new Setup(design, PciTopology.SeparateRootPorts);
        Assert.Equal(Errno.None, s.Importer.SetFlags(DmirrorFlags.AllowP2P).Error);
        var buf = new byte[Size];
        var r = s.Importer.Read(s.Addr, Npages, buf);
        Assert.Equal(Errno.None, r.Error);
        Assert.Equal(s.Data, buf);
        Assert.Equal(0, s.Stat("p2p_alias_pages"));
        Assert.Equal((long)Npages, s.Stat("p2p_fallback_pages"));
        Assert.Equal((long)Npages, s.Stat("device_migrate_to_ram"));
        Assert.All(s.OwnerSnapshot(), b => Assert.Equal((byte)DmirrorProt.Write, b));
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void AP2pWriteLandsInTheOwnersMemoryAndTheCpuSeesItAfterFaultingBack(DevicePrivateDesign design)
    {
        using var s = new Setup(design);
        Assert.Equal(Errno.None, s.Importer.SetFlags(DmirrorFlags.AllowP2P).Error);
        var written = new byte[Size];
        for (int i = 0; i < written.Length; i += 4)
            BitConverter.TryWriteBytes(written.AsSpan(i), -i);
        Assert.Equal(new DmirrorResult(Errno.None, Npages, 1), s.Importer.Write(s.Addr, Npages, written));
        // Still on unit 0: the write went over the BAR into its memory.
        Assert.All(s.OwnerSnapshot(), b => Assert.Equal((byte)(DmirrorProt.DevPrivateLocal | DmirrorProt.Write), b));
        var cpu = new byte[Size];
        s.P.Read(s.Addr, cpu);
        Assert.Equal(written, cpu);
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void OwnerMigratingBackInvalidatesTheImportersAliasesAndItsNextReadIsCorrect(DevicePrivateDesign design)
    {
        using var s = new Setup(design);
        Assert.Equal(Errno.None, s.Importer.SetFlags(DmirrorFlags.AllowP2P).Error);
        var buf = new byte[Size];
        Assert.Equal(Errno.None, s.Importer.Read(s.Addr, Npages, buf).Error);
        Assert.Equal(Errno.None, s.Owner.MigrateToSystem(s.Addr, Npages).Error);
        // The next read finds no mirror entries (faults again) and gets the data from RAM.
        Array.Clear(buf);
        var r = s.Importer.Read(s.Addr, Npages, buf);
        Assert.Equal(new DmirrorResult(Errno.None, Npages, 1), r);
        Assert.Equal(s.Data, buf);
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void OwnerReleasingItsMemoryInvalidatesTheImportersAliases(DevicePrivateDesign design)
    {
        using var s = new Setup(design);
        Assert.Equal(Errno.None, s.Importer.SetFlags(DmirrorFlags.AllowP2P).Error);
        var buf = new byte[Size];
        Assert.Equal(Errno.None, s.Importer.Read(s.Addr, Npages, buf).Error);
        Assert.Equal(Errno.None, s.Owner.Release().Error);
        Array.Clear(buf);
        Assert.Equal(new DmirrorResult(Errno.None, Npages, 1), s.Importer.Read(s.Addr, Npages, buf));
        Assert.Equal(s.Data, buf);
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void TheOwnerStillGetsItsDevicePrivatePageNeverTheAlias(DevicePrivateDesign design)
    {
        using var s = new Setup(design);
        Assert.Equal(Errno.None, s.Owner.SetFlags(DmirrorFlags.AllowP2P).Error);
        // Case 1 comes first: the owner's snapshot still sees its own device-private pages.
        Assert.All(s.OwnerSnapshot(), b => Assert.Equal((byte)(DmirrorProt.DevPrivateLocal | DmirrorProt.Write), b));
        // And hmm_range_fault with ALLOW_P2P for the owner reports the device-private page itself.
        var mm = s.P.Mm;
        var device = s.M.Kernel.Pci.Endpoints[0].Driver!;
        var notifier = MmuNotifier.MmuIntervalNotifierInsert(mm, s.Addr, Size, (_, _, _) => true);
        var range = new HmmRange
        {
            Notifier = notifier,
            HmmPfns = new ulong[Npages],
            Start = s.Addr,
            End = s.Addr + Size,
            DefaultFlags = HmmPfn.ReqFault | HmmPfn.AllowP2p,
            DevPrivateOwner = device,
        };
        range.NotifierSeq = notifier.ReadBegin();
        mm.MmapLock.EnterReadLock();
        var err = RangeFault.HmmRangeFault(mm, range);
        mm.MmapLock.ExitReadLock();
        MmuNotifier.MmuIntervalNotifierRemove(notifier);
        Assert.Equal(HmmSim.Kernel.Errno.None, err);
        Assert.All(range.HmmPfns, p => Assert.True(HmmPfn.ToPage(s.M.Kernel, p).IsDevicePrivate));
        Assert.Equal(design == DevicePrivateDesign.DeviceAddressSpace, (range.HmmPfns[0] & HmmPfn.DevicePrivate) != 0);
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void TheBarsShowInIomemAndTheirStructPagesAreCounted(DevicePrivateDesign design)
    {
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design });
        // Firmware assigns the BARs before any driver binds, so /proc/iomem names each after its PCI
        // function ("0000:01:00.0 BAR1"); the function is the one dmirror unit N probed on.
        for (int unit = 0; unit < 2; unit++)
        {
            var ep = m.Kernel.Pci.Endpoints[unit];
            Assert.Equal($"hmm_dmirror{unit}", Assert.IsType<HmmSim.Drivers.TestHmm.DmirrorDevice>(ep.Driver).Name);
            Assert.Contains($"{ep.Bar.Start:x8}-{ep.Bar.Start + ep.Bar.Length - 1:x8} : {ep.Name} BAR1\n", m.Iomem(), StringComparison.Ordinal);
        }
        // Every participating device page needs a second struct page, the P2PDMA one: 2 BARs of 1 GiB.
        long ram = 8L << 30 >> 12, bars = 2 * (1L << 30 >> 12), chunks = 4 * (256L << 20 >> 12);
        Assert.Equal((ram + bars + chunks) * 64, m.VmStat["struct_page_bytes_kernel"]);
    }

    [Fact]
    public void DistanceRulesFollowTheTopology()
    {
        using var sw = new Machine(new MachineConfig { PciTopology = PciTopology.CommonSwitch });
        var e = sw.Kernel.Pci.Endpoints;
        Assert.Equal((PciP2pdmaMapType.BusAddr, 4), HmmSim.Kernel.P2pdma.CalcMapTypeAndDist(e[0], e[1]));
        Assert.Equal((PciP2pdmaMapType.BusAddr, 0), HmmSim.Kernel.P2pdma.CalcMapTypeAndDist(e[0], e[0]));
        using var rp = new Machine(new MachineConfig { PciTopology = PciTopology.SeparateRootPorts });
        var f = rp.Kernel.Pci.Endpoints;
        Assert.Equal(PciP2pdmaMapType.NotSupported, HmmSim.Kernel.P2pdma.CalcMapTypeAndDist(f[0], f[1]).Type);
        Assert.Equal(-1, HmmSim.Kernel.P2pdma.PciP2pdmaDistance(f[0], f[1]));
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void TheImporterReadsADeviceThpThroughTheAlias(DevicePrivateDesign design)
    {
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design });
        var p = m.CreateProcess();
        using var owner = p.OpenDmirror(0);
        using var importer = p.OpenDmirror(1);
        ulong pmd = 2UL << 20;
        Assert.Equal(Errno.None, p.Mmap(0, 2 * pmd, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong raw));
        ulong a = (raw + pmd - 1) & ~(pmd - 1);
        Assert.Equal(Errno.None, p.Madvise(a, pmd, Advice.HugePage));
        var data = new byte[pmd];
        for (int i = 0; i < data.Length; i += 4)
            BitConverter.TryWriteBytes(data.AsSpan(i), i ^ 0x5a5a);
        p.Write(a, data);
        var mirror = new byte[pmd];
        Assert.Equal(Errno.None, owner.MigrateToDevice(a, 512, mirror).Error);
        Assert.Equal(1, m.VmStat["device_migrate_to_device_thp"]);
        Assert.Equal(Errno.None, importer.SetFlags(DmirrorFlags.AllowP2P).Error);
        var buf = new byte[pmd];
        Assert.Equal(new DmirrorResult(Errno.None, 512, 1), importer.Read(a, 512, buf));
        Assert.Equal(data, buf);
        Assert.Equal(512, m.VmStat["p2p_alias_pages"]);
    }
}
