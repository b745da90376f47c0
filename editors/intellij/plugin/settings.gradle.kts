// The IntelliJ Platform glue of mirrord's plugin. Builds only where the
// JetBrains SDK can be downloaded (not on the machines this repository is
// tested on): `./gradlew buildPlugin` with Gradle 8.x and JDK 17+.
rootProject.name = "mirrord-intellij"
