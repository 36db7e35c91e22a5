using CloudMirrorFs.Facets;
using CloudMirrorFs.Objects;

namespace CloudMirrorFs.Tests.Objects;

/// <summary>
/// The manifest's index of children and node paths, which lets a listing, an rmdir check, a directory rename and a
/// commit cost what they touch instead of a walk of every path: after every operation of a random sequence it must
/// answer exactly what a walk of all paths answers, whether it was built at the start or in the middle.
/// </summary>
[TestClass]
public sealed class RemoteManifestTests
{
    [TestMethod]
    [DataRow(0)]
    [DataRow(1)]
    [DataRow(2)]
    public void Index_AfterEveryOperationOfARandomSequence_AnswersWhatAWalkOfAllPathsAnswers(int seed)
    {
        var rng = new Random(seed);
        var manifest = new RemoteManifest();
        long nextId = 1;
        bool indexed = false;
        for (int step = 0; step < 1500; step++)
        {
            List<string> dirs = ["", .. manifest.Nodes.Where(kv => kv.Value.Kind == NodeKind.Directory).Select(kv => kv.Key)];
            List<string> all = [.. manifest.Nodes.Keys];
            string parent = dirs[rng.Next(dirs.Count)];
            string fresh = (parent.Length == 0 ? "" : parent + "/") + $"n{rng.Next(40)}";
            JournalOp? op = rng.Next(10) switch
            {
                0 or 1 or 2 => new JournalOp { Op = "create", Path = fresh, Id = nextId++ },
                3 or 4 => new JournalOp { Op = "mkdir", Path = fresh },
                5 when all.Count > 0 => Pick(all) is var from && !Under(fresh, from) ? new JournalOp { Op = "rename", Path = from, To = fresh } : null,
                6 when all.Count > 0 => Pick(all) is var f && manifest.Nodes[f].Kind != NodeKind.Directory ? new JournalOp { Op = "unlink", Path = f } : null,
                7 when dirs.Count > 1 => Pick(dirs.Skip(1).ToList()) is var d && !all.Any(p => p.StartsWith(d + "/", StringComparison.Ordinal)) ? new JournalOp { Op = "rmdir", Path = d } : null,
                8 => new JournalOp { Op = "symlink", Path = fresh, Id = nextId++, Target = "t" },
                _ => null,
            };
            if (op is null || (op.Op == "rename" && manifest.Nodes.TryGetValue(op.To!, out RemoteNode? over) && over.Kind == NodeKind.Directory
                && all.Any(p => p.StartsWith(op.To + "/", StringComparison.Ordinal))))
            {
                continue; // what the facet refuses before it reaches the manifest (rename over a non-empty folder)
            }
            manifest.Apply(op, []);
            if (!indexed && step >= 500)
            {
                indexed = true; // from here on the index is built, and every change must keep it right
            }
            if (indexed)
            {
                AssertIndexAnswersAsWalk(manifest, $"seed {seed}, step {step}, after {op.Op} {op.Path} {op.To}");
            }
        }

        string Pick(List<string> from) => from[rng.Next(from.Count)];
    }

    private static bool Under(string path, string folder) => path == folder || path.StartsWith(folder + "/", StringComparison.Ordinal);

    private static void AssertIndexAnswersAsWalk(RemoteManifest manifest, string when)
    {
        foreach (string dir in manifest.Nodes.Where(kv => kv.Value.Kind == NodeKind.Directory).Select(kv => kv.Key).Append(""))
        {
            string prefix = dir.Length == 0 ? "" : dir + "/";
            string[] walked = [.. manifest.Nodes.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal) && k.IndexOf('/', prefix.Length) < 0)
                .Select(k => k[prefix.Length..]).Order(StringComparer.Ordinal)];
            string[] listed = [.. manifest.ChildrenOf(dir).Select(c => c.Name).Order(StringComparer.Ordinal)];
            CollectionAssert.AreEqual(walked, listed, $"children of '{dir}', {when}");
            Assert.AreEqual(walked.Length > 0, manifest.HasChildren(dir), $"'{dir}' has children, {when}");
            foreach (var (name, node) in manifest.ChildrenOf(dir))
            {
                Assert.AreSame(manifest.Nodes[prefix + name], node, $"node of {prefix + name}, {when}");
            }
        }
        foreach (var (path, node) in manifest.Nodes)
        {
            Assert.AreEqual(path, manifest.PathOf(node), $"path of a node, {when}");
        }
        Assert.IsNull(manifest.PathOf(new RemoteNode()), "a node the manifest does not hold has no path");
    }
}
