namespace HmmSim.Cli.Explore;

/// <summary>Delta debugging (Zeller's ddmin) over a list: the smallest sublist, found within a budget
/// of predicate runs, on which the predicate still holds (here: the run fails with the same
/// signature). 1-minimal when the budget allows: removing any single element makes it pass.</summary>
internal static class Shrinker
{
    public static IReadOnlyList<T> Shrink<T>(IReadOnlyList<T> failing, Func<IReadOnlyList<T>, bool> stillFails, int budget, out int runs)
    {
        ArgumentNullException.ThrowIfNull(failing);
        ArgumentNullException.ThrowIfNull(stillFails);
        runs = 1;
        if (stillFails([]))
            return [];
        var current = failing.ToList();
        int n = 2;
        while (current.Count >= 2 && runs < budget)
        {
            int chunk = (current.Count + n - 1) / n;
            bool reduced = false;
            // Try each complement: the list without one chunk.
            for (int start = 0; start < current.Count && runs < budget; start += chunk)
            {
                var candidate = new List<T>(current.Count);
                for (int i = 0; i < current.Count; i++)
                    if (i < start || i >= start + chunk)
                        candidate.Add(current[i]);
                if (candidate.Count == 0)
                    continue;
                runs++;
                if (stillFails(candidate))
                {
                    current = candidate;
                    n = Math.Max(n - 1, 2);
                    reduced = true;
                    break;
                }
            }
            if (reduced)
                continue;
            if (chunk == 1)
                break;
            n = Math.Min(n * 2, current.Count);
        }
        return current;
    }
}
