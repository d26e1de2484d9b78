using System.Security.Cryptography;

namespace HmmSim.Cli.Proposals;

/// <summary>A workload whose every user-visible answer is recorded, so a proposal can be checked to
/// answer exactly as the default redesign does: anonymous memory (order-0 and a THP-sized range)
/// written from the CPU, migrated to a device-private dmirror, snapshotted, read through the device,
/// shared with a forked child, faulted back to RAM by CPU reads, and migrated back explicitly.</summary>
public static class ProposalWorkload
{
    private const ulong Page = 4096;

    /// <summary>The answers, one line per observation, on a machine booted with <paramref name="variants"/>.</summary>
    public static IReadOnlyList<string> Answers(DesignVariants variants)
    {
        ArgumentNullException.ThrowIfNull(variants);
        var answers = new List<string>();
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = DevicePrivateDesign.DeviceAddressSpace, Variants = variants });
        using var p = m.CreateProcess();
        using var dev = p.OpenDmirror(0);
        using var dev1 = p.OpenDmirror(1);
        foreach (ulong npages in new ulong[] { 16, 512 })
        {
            ulong size = npages * Page;
            var err = p.Mmap(0, size * 2, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong raw);
            answers.Add($"mmap {npages}: {err}");
            ulong addr = (raw + size - 1) & ~(size - 1);   // aligned, so 512 pages can be a THP
            if (npages == 512)
                answers.Add($"madvise hugepage: {p.Madvise(addr, size, Advice.HugePage)}");
            var data = new byte[size];
            for (int i = 0; i < data.Length; i += 4)
                BitConverter.TryWriteBytes(data.AsSpan(i), i * 2654435761u);
            p.Write(addr, data);

            var mirror = new byte[size];
            Record(answers, "migrate to device", dev.MigrateToDevice(addr, npages, mirror));
            var prot = new byte[npages];
            Record(answers, "snapshot", dev.Snapshot(addr, npages, prot));
            answers.Add($"snapshot flags: {Convert.ToHexString(SHA256.HashData(prot))[..16]} first 0x{prot[0]:x2}");
            Record(answers, "snapshot other device", dev1.Snapshot(addr, npages, prot));
            answers.Add($"other device flags first 0x{prot[0]:x2}");
            Record(answers, "device read", dev.Read(addr, npages, mirror));
            answers.Add($"device read equal: {mirror.AsSpan().SequenceEqual(data)}");
            answers.Add($"pagemap entry 0: 0x{p.PagemapEntry(addr) & ~((1UL << 55) - 1):x}");

            using (var child = p.Fork())
            {
                answers.Add($"child reads first word: {child.ReadInt32(addr)}");
                child.WriteInt32(addr + Page, 7);
                answers.Add($"child wrote; parent sees {p.ReadInt32(addr + Page)}");
            }
            var back = new byte[size];
            p.Read(addr, back);
            answers.Add($"cpu read back equal: {back.AsSpan(0, (int)Page).SequenceEqual(data.AsSpan(0, (int)Page))} {back.AsSpan(2 * (int)Page).SequenceEqual(data.AsSpan(2 * (int)Page))}");
            Record(answers, "migrate to device again", dev.MigrateToDevice(addr, npages, mirror));
            Record(answers, "migrate to system", dev.MigrateToSystem(addr, npages));
            p.Read(addr, back);
            answers.Add($"after migrate back equal: {back.AsSpan(2 * (int)Page).SequenceEqual(data.AsSpan(2 * (int)Page))}");
            answers.Add($"munmap: {p.Munmap(raw, size * 2)}");
        }
        foreach (var (k, v) in m.VmStat)
            if (!k.StartsWith("struct_page_bytes", StringComparison.Ordinal) && !k.StartsWith("page_data_bytes", StringComparison.Ordinal))
                answers.Add($"vmstat {k} {v}");
        return answers;
    }

    private static void Record(List<string> answers, string what, DmirrorResult r) =>
        answers.Add($"{what}: {r}");
}
