package dev.mirrord.intellij.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonParser;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

class RunEnvironmentTest {
    private static final Map<String, String> IDE = Map.of("PATH", "/usr/bin", "HOME", "/home/dev", "INHERITED", "from the IDE");

    private static EnvMerge prepared(String env) {
        return EnvMerge.fromPrepared(JsonParser.parseString("{\"env\":" + env + "}").getAsJsonObject());
    }

    private static Map<String, String> map(String... kv) {
        Map<String, String> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put(kv[i], kv[i + 1]);
        }
        return m;
    }

    @Test
    void withoutUnsetsTheSessionIsWrittenOverTheUsersVariablesAndInheritanceStays() {
        RunEnvironment before = new RunEnvironment(map("USER_VAR", "kept", "SHARED", "local"), true);
        RunEnvironment after = before.patchedBy(prepared("{\"USER_VAR\":\"kept\",\"SHARED\":\"pod\",\"LD_PRELOAD\":\"/l.so\"}"), IDE);
        assertEquals(map("USER_VAR", "kept", "SHARED", "pod", "LD_PRELOAD", "/l.so"), after.explicit());
        assertTrue(after.passParent());
        assertEquals(map("SHARED", "pod", "LD_PRELOAD", "/l.so"), after.additionsTo(before), "only what changed is added");
    }

    @Test
    void unsettingAnInheritedVariableWritesTheWholeEnvironmentWithoutIt() {
        RunEnvironment before = new RunEnvironment(map("USER_VAR", "kept"), true);
        RunEnvironment after = before.patchedBy(prepared("{\"USER_VAR\":\"kept\",\"INHERITED\":null,\"MIRRORD_X\":\"1\"}"), IDE);
        assertFalse(after.passParent(), "inheritance off: nothing else can drop an inherited variable");
        assertEquals(map("PATH", "/usr/bin", "HOME", "/home/dev", "USER_VAR", "kept", "MIRRORD_X", "1").keySet(), after.explicit().keySet());
        assertEquals("/usr/bin", after.explicit().get("PATH"), "the rest of the IDE's environment is still there");
        assertFalse(after.explicit().containsKey("INHERITED"));
    }

    @Test
    void withoutInheritanceAnUnsetOnlyRemovesAnExplicitVariable() {
        RunEnvironment before = new RunEnvironment(map("USER_VAR", "kept", "DROP_ME", "x"), false);
        RunEnvironment after = before.patchedBy(prepared("{\"USER_VAR\":\"kept\",\"DROP_ME\":null}"), IDE);
        assertEquals(map("USER_VAR", "kept"), after.explicit());
        assertFalse(after.passParent());
        var e = assertThrows(MirrordIdeException.class, () -> after.additionsTo(before),
                "a sink that only adds cannot remove DROP_ME: say so instead of running with it");
        assertTrue(e.getMessage().contains("DROP_ME") && e.getMessage().contains("remove DROP_ME"), e.getMessage());
    }

    @Test
    void theExplicitMapIsACopy() {
        Map<String, String> mine = map("A", "1");
        RunEnvironment env = new RunEnvironment(mine, true);
        mine.put("B", "2");
        assertEquals(map("A", "1"), env.explicit());
        assertThrows(UnsupportedOperationException.class, () -> env.explicit().put("C", "3"));
    }
}
