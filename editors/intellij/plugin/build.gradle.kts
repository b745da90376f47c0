// IntelliJ Platform Gradle Plugin 2.x. The IDE-independent code is
// ../core (built and tested with Maven); its sources are compiled in here so
// the plugin ships one jar. Gson is bundled with the platform.
plugins {
    id("java")
    id("org.jetbrains.intellij.platform") version "2.1.0"
}

group = "dev.mirrord"
version = "0.1.0"

repositories {
    mavenCentral()
    intellijPlatform {
        defaultRepositories()
    }
}

// The optional integrations compile against their plugins: Gradle and
// JavaScript (Node.js) are bundled with IntelliJ IDEA Ultimate; Python and Go
// come from the Marketplace at the versions built for 2024.2, set in
// gradle.properties (pythonPluginVersion, goPluginVersion): nothing here has
// been built, so no version is guessed. stubs/check.sh compiles the same
// sources against stand-ins on machines without the SDK.
dependencies {
    intellijPlatform {
        intellijIdeaUltimate("2024.2")
        bundledPlugins("com.intellij.java", "com.intellij.gradle", "JavaScript")
        plugins(
            "PythonCore:${providers.gradleProperty("pythonPluginVersion").get()}",
            "org.jetbrains.plugins.go:${providers.gradleProperty("goPluginVersion").get()}",
        )
        instrumentationTools()
    }
}

sourceSets {
    main {
        java.srcDir("../core/src/main/java")
    }
}

java {
    toolchain.languageVersion.set(JavaLanguageVersion.of(17))
}

intellijPlatform {
    pluginConfiguration {
        ideaVersion {
            sinceBuild = "242"
        }
    }
}
