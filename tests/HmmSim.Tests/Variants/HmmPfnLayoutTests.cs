namespace HmmSim.Kernel.Tests.Variants;

/// <summary>HmmPfnLayout.AsPosted: HMM_PFN_DEVICE_PRIVATE (an output flag of the redesign) and
/// HMM_PFN_ALLOW_P2P (an input flag of the P2P series) on the same bit. A caller that keeps its hmm_pfns
/// array between faults, as ib_umem_odp keeps pfn_list (the reason HMM_PFN_INOUT_FLAGS exist), and
/// honours ALLOW_P2P per page through pfn_flags_mask, hands the previous output back as input: a page
/// reported device-private last time now reads as "P2P allowed".</summary>
public class HmmPfnLayoutTests
{
    private const ulong Npages = 8;
    private const ulong Size = Npages * 4096;

    private static ulong[] Fault(Machine m, Process p, ulong addr, ulong[] pfns, object owner)
    {
        var mm = p.Mm;
        var notifier = MmuNotifier.MmuIntervalNotifierInsert(mm, addr, Size, (_, _, _) => true);
        var range = new HmmRange
        {
            Notifier = notifier,
            HmmPfns = pfns,
            Start = addr,
            End = addr + Size,
            DefaultFlags = HmmPfn.ReqFault,   // the caller asks for no P2P by default...
            PfnFlagsMask = HmmPfn.AllowP2pFor(m.Kernel),   // ...but lets each entry ask (ib_umem_odp's mask)
            DevPrivateOwner = owner,
        };
        range.NotifierSeq = notifier.ReadBegin();
        mm.MmapLock.EnterReadLock();
        var err = RangeFault.HmmRangeFault(mm, range);
        mm.MmapLock.ExitReadLock();
        MmuNotifier.MmuIntervalNotifierRemove(notifier);
        Assert.Equal(Errno.None, err);
        return pfns;
    }

    /// <summary>Pages on unit 0, faulted by unit 0's owner (output: device-private offsets), then moved to
    /// unit 1; the owner faults the range again with the same array.</summary>
    private static (Machine M, bool[] Alias, bool[] OnDevice) Run(HmmSim.HmmPfnLayout layout)
    {
        var m = new Machine(new MachineConfig { Variants = new() { HmmPfnLayout = layout } });
        var p = m.CreateProcess();
        using var unit0 = p.OpenDmirror(0);
        using var unit1 = p.OpenDmirror(1);
        Assert.Equal(HmmSim.Errno.None, p.Mmap(0, Size, HmmSim.Prot.Read | HmmSim.Prot.Write, HmmSim.MapFlags.Private | HmmSim.MapFlags.Anonymous, out ulong a));
        for (ulong i = 0; i < Npages; i++)
            p.WriteInt32(a + i * 4096, (int)i + 3);
        Assert.Equal(HmmSim.Errno.None, unit0.MigrateToDevice(a, Npages, new byte[Size]).Error);
        var owner = m.Kernel.Pci.Endpoints[0].Driver!;
        var pfns = Fault(m, p, a, new ulong[Npages], owner);
        Assert.All(pfns, e => Assert.NotEqual(0UL, e & HmmPfn.DevicePrivate));

        Assert.Equal(HmmSim.Errno.None, unit0.MigrateToSystem(a, Npages).Error);
        Assert.Equal(HmmSim.Errno.None, unit1.MigrateToDevice(a, Npages, new byte[Size]).Error);
        Fault(m, p, a, pfns, owner);
        var alias = pfns.Select(e => HmmPfn.ToPage(m.Kernel, e).IsPciP2pDma).ToArray();
        var prot = new byte[Npages];
        Assert.Equal(HmmSim.Errno.None, unit1.Snapshot(a, Npages, prot).Error);
        var onDevice = prot.Select(b => (b & (byte)DmirrorProt.DevPrivateLocal) != 0).ToArray();
        return (m, alias, onDevice);
    }

    [Fact]
    public void WithDisjointBitsTheStaleOutputIsNoRequestAndThePagesComeBackToRam()
    {
        var (m, alias, onDevice) = Run(HmmSim.HmmPfnLayout.Disjoint);
        using (m)
        {
            Assert.All(alias, Assert.False);
            Assert.All(onDevice, Assert.False);
        }
    }

    [Fact]
    public void AsPostedTheStaleDevicePrivateBitReadsAsAllowP2pAndTheCallerGetsP2pAliases()
    {
        var (m, alias, onDevice) = Run(HmmSim.HmmPfnLayout.AsPosted);
        using (m)
        {
            Assert.Equal(HmmPfn.DevicePrivate, HmmPfn.AllowP2pFor(m.Kernel));
            // The caller never asked for P2P, yet gets unit 1's BAR aliases, and the pages stay on unit 1.
            Assert.All(alias, Assert.True);
            Assert.All(onDevice, Assert.True);
        }
    }
}
